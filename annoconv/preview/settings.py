"""The preview's defaults, shared by the API, the command line and the run."""

#: Images on a page or sheet unless `sample` says otherwise (a seeded sample when more).
DEFAULT_SAMPLE = 100
#: The same without an output file: what a notebook cell shows.
NOTEBOOK_SAMPLE = 12
#: Longer side of the pictures embedded in a page, in pixels: a 200-image page of photos
#: stays a few MB.
DEFAULT_IMAGE_SIZE = 320
