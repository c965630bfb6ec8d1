"""The doctor on a real node's sosreport (hotsos' compute node, see its NOTICE.md): what a
real node shows that the lab does not must not read as a fault."""

from __future__ import annotations

from pathlib import Path

from whynoip import facts as F
from whynoip.diagnose import diagnose
from whynoip.evidence.read import read
from whynoip.rules.control import read_only_image

SAMPLE = Path(__file__).parent.parent / "fixtures" / "real-samples" / "hotsos-openstack-node"


def test_snap_images_are_full_by_design_not_a_full_disk():
    facts = list(read([str(SAMPLE)]))
    snaps = [f for f in facts if isinstance(f, F.DiskUsage) and f.mount.startswith("/snap/")]
    assert len({s.mount for s in snaps}) == 4 and all(s.use_percent == 100 for s in snaps if s.use_percent is not None)
    assert all(read_only_image(s) for s in snaps)
    d = diagnose(facts)
    assert not [f for f in d.findings if f.id == "disk-full"]
    # what the node's logs do say: the DHCP agent lost the broker and never got it back
    (f,) = [f for f in d.findings if f.id == "rabbitmq-unreachable"]
    assert f.severity == "critical" and f.root_cause


def test_a_full_root_filesystem_still_is():
    facts = list(read([str(SAMPLE)]))
    root = next(f for f in facts if isinstance(f, F.DiskUsage) and f.mount == "/" and f.size_kb)
    full = F.DiskUsage(origin=root.origin, filesystem=root.filesystem, mount="/", size_kb=root.size_kb,
                       used_kb=root.size_kb, avail_kb=0, use_percent=100)
    assert not read_only_image(full)
    d = diagnose(facts + [full])
    assert [f.subject for f in d.findings if f.id == "disk-full"] == ["/ on compute4"]
