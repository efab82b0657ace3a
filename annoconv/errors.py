"""The errors annoconv raises. Every one renders as a single line naming where it happened."""

from __future__ import annotations


class AnnoconvError(Exception):
    """Base class of every error annoconv raises on purpose."""


class AnnotationError(AnnoconvError):
    """Bad input data: names the source file and, where known, the element or line."""

    def __init__(self, source: str | None, message: str, where: str | None = None) -> None:
        self.source = source
        self.where = where
        self.message = message
        super().__init__(self.__str__())

    def __str__(self) -> str:
        location = ": ".join(part for part in (self.source, self.where) if part)
        return f"{location}: {self.message}" if location else self.message

    def __reduce__(self) -> tuple[type[AnnotationError], tuple[str | None, str, str | None]]:
        # Rebuilt from its parts when it travels between processes (engines).
        return type(self), (self.source, self.message, self.where)

    def with_source(self, source: str) -> AnnotationError:
        """The same error, attributed to `source` when it does not name one yet."""
        if self.source:
            return self
        return AnnotationError(source, self.message, self.where)


class SkipRecord(AnnotationError):
    """A record that a policy the user chose (e.g. ``size_policy="skip"``) leaves out: it is
    reported as skipped whatever the error policy."""


class OptionError(AnnoconvError):
    """A usage error: an option or a combination of options that cannot work. Raised before
    anything is written; the command line exits 2 on it."""


class FormatError(OptionError):
    """Unknown format name, a format that cannot be inferred, or one missing its dependency."""


class MissingDependencyError(FormatError):
    """A format needs an optional dependency; the message says what to install."""


class LabelMapError(AnnoconvError):
    """An invalid label map, or data whose classes the given label map does not cover."""


class UnknownClassesError(LabelMapError):
    """Classes in the data that the given label map lacks, with how often each occurs."""

    def __init__(self, unknown: dict[str, int], label_map_source: str | None = None) -> None:
        self.unknown = dict(sorted(unknown.items()))
        listed = ", ".join(f"{name!r} ({count})" for name, count in self.unknown.items())
        where = f" {label_map_source}" if label_map_source else ""
        super().__init__(
            f"{len(self.unknown)} class(es) not in the label map{where}: {listed}; "
            "add them to the map or pass --extend-label-map"
        )


class StorageError(AnnoconvError):
    """A file or object that cannot be reached; renders as one line naming its URL."""

    def __init__(self, uri: str, problem: str) -> None:
        super().__init__(uri, problem)
        self.uri = uri
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.uri}: {self.problem}"


class NotFoundError(StorageError, FileNotFoundError):
    """No such file, object or bucket (still a FileNotFoundError for callers that catch it)."""


class AccessDeniedError(StorageError, PermissionError):
    """The credentials in use may not read or write this path (still a PermissionError)."""


class OutputLockedError(AnnoconvError):
    """Another run holds the lock on the output (`annoconv.io.lock`); names the holder."""

    def __init__(self, output: str, lock_file: str, holder: str) -> None:
        self.output = output
        self.lock_file = lock_file
        self.holder = holder
        super().__init__(
            f"{output}: another run is writing this output ({holder}); wait for it to end, "
            f"or remove {lock_file} if it is gone"
        )

    def __reduce__(self) -> tuple[type[OutputLockedError], tuple[str, str, str]]:
        return type(self), (self.output, self.lock_file, self.holder)


class UnsortedRange(AnnoconvError):
    """A byte range of a CSV that a parallel engine cut by key is not sorted by it (so the
    file is not either); the engine runs the file in one task instead."""
