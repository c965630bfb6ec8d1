"""The exceptions whynoip raises on purpose. The CLI turns each into one clear line."""


class WhynoipError(Exception):
    """Base: a failure with a message meant for the operator."""


class EvidenceError(WhynoipError):
    """Evidence that cannot be read: carries the path and line it points at."""

    def __init__(self, message: str, path: str = "-", line: int = 0):
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")


class LabError(WhynoipError):
    """The lab could not do what was asked (missing tool, not root, no such lab)."""
