"""The model: facts joined into one picture of the DHCP system.

`build(facts)` groups facts by kind and derives, per network, its subnets and DHCP
servers (IP, host, namespace, interface, dnsmasq process and its files and log lines),
the ports (MAC, IP, host, devices, OVS tag, firewall chains), and per port the capture
points on its path with the DHCP messages seen at each. Rules decide from this; they
never read text."""

from whynoip.model.picture import Picture, build

__all__ = ["Picture", "build"]
