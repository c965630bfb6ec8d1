"""The fact vocabulary round-trips through JSON with its type tags."""

from whynoip import facts as F


def test_mixed_facts_round_trip_through_json():
    o = F.Origin(path="sos/ps", line=12, host="net-02", namespace="qdhcp-x")
    items = [
        F.DhcpPacket(origin=o, xid=0x3903F326, message_type="DISCOVER", client_mac="fa:16:3e:4a:0b:91"),
        F.HostEntry(origin=o, mac="fa:16:3e:4a:0b:91", ip="10.8.1.14", hostname="host-10-8-1-14"),
        F.Unparsed(origin=o, end_line=20, reason="no parser recognised this section"),
    ]
    back = F.from_json(F.to_json(items))
    assert back == items
    assert [type(x).__name__ for x in back] == ["DhcpPacket", "HostEntry", "Unparsed"]
