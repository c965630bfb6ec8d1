"""Rules: each finding id of the catalog is decided in one place, from the model.

A rule is a function `(picture) -> Iterable[Finding]`. Rules never read raw text; they
cite the facts they stand on. `ALL` lists them; `whynoip.diagnose` runs them, links
causes to effects and ranks the result."""

from whynoip.rules import control, datapath, server

ALL = (*server.RULES, *datapath.RULES, *control.RULES)
