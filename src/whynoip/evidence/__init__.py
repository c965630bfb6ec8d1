"""Evidence: opens anything an operator has and yields sections of raw input.

A section is a run of input with one format (a file, a file inside a tarball or a
sosreport, the output of one command in a pasted transcript), with where it came from.
Which parser reads it is decided from the command (a shell prompt), the path (a
sosreport's `sos_commands/<plugin>/<command>`), or its content.
"""

from whynoip.evidence.section import Section

__all__ = ["Section"]
