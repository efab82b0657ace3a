"""Input and output: fsspec paths, atomic writes, archives, image headers and image lookup."""
