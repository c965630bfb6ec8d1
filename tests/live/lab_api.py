"""The lab's control plane behind the OpenStack HTTP API, for openstacksdk to read.

The lab has no Keystone, Neutron API or Nova API: this serves its networks, subnets,
ports, agents and instances as those APIs answer (Keystone v3 tokens with a catalog,
Neutron v2.0 resources, Nova v2.1 servers), on a loopback port, so that `whynoip collect`
talks to it through openstacksdk exactly as to a cloud. Only the GETs the collection makes
(and the token POST) are served; anything else is a 404."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

TOKEN = "gAAAAB-lab-token-" + uuid.uuid4().hex


def _neutron_views(lab) -> dict[str, object]:
    cp = lab.cp
    project = uuid.uuid5(uuid.NAMESPACE_DNS, f"project.{lab.name}").hex
    sg = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"default-sg.{lab.name}"))
    subnets = cp.subnets()
    nets = [{"id": n.id, "name": n.name, "status": "ACTIVE", "admin_state_up": True, "mtu": n.mtu,
             "subnets": [s.id for s in subnets if s.network_id == n.id], "provider:network_type": "vxlan",
             "provider:segmentation_id": n.segmentation_id, "provider:physical_network": None, "shared": False,
             "router:external": False, "port_security_enabled": True, "project_id": project, "tenant_id": project,
             "availability_zones": ["nova"]} for n in cp.networks()]
    subs = [{"id": s.id, "name": s.name, "network_id": s.network_id, "cidr": s.cidr, "gateway_ip": s.gateway_ip,
             "enable_dhcp": s.enable_dhcp, "ip_version": 4,
             "allocation_pools": [{"start": s.pool_start, "end": s.pool_end}], "dns_nameservers": list(s.dns),
             "host_routes": [{"destination": d, "nexthop": h} for d, h in s.host_routes], "project_id": project,
             "tenant_id": project} for s in subnets]
    ports = []
    for p in cp.ports():
        compute = p.device_owner.startswith("compute:")
        ports.append({"id": p.id, "name": p.name, "network_id": p.network_id, "mac_address": p.mac,
                      "fixed_ips": [{"subnet_id": p.subnet_id, "ip_address": p.ip}], "status": p.status,
                      "admin_state_up": p.admin_state_up, "device_owner": p.device_owner, "device_id": p.device_id,
                      "binding:host_id": p.binding_host, "binding:vif_type": p.vif_type,
                      "binding:vnic_type": "normal", "binding:profile": {}, "binding:vif_details": {},
                      "security_groups": [sg] if compute else [], "port_security_enabled": True,
                      "allowed_address_pairs": [], "extra_dhcp_opts": [], "project_id": project,
                      "tenant_id": project})
    def when(t):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) if t else None

    agents = {a["id"]: {"id": a["id"], "agent_type": a["agent_type"], "host": a["host"], "alive": a["alive"],
                        "admin_state_up": a["admin_state_up"], "binary": a["binary"],
                        "availability_zone": "nova" if a["agent_type"] == "DHCP agent" else None,
                        "configurations": {}, "created_at": when(a.get("started")),
                        "started_at": when(a.get("started")), "heartbeat_timestamp": when(a.get("heartbeat")),
                        "topic": "dhcp_agent" if a["agent_type"] == "DHCP agent" else "N/A", "description": None}
              for a in cp.agents()}
    hosting = {n.id: [agents[a["id"]] for a in cp.dhcp_agents_for(n.id)] for n in cp.networks()}
    names = {n.id: n.name for n in cp.networks()}
    servers = []
    for inst in cp.instances():
        p = cp.port(inst["port_id"])
        servers.append({"id": inst["id"], "name": inst["name"], "status": "ACTIVE",
                        "addresses": {names[p.network_id]: [{"addr": p.ip, "version": 4, "OS-EXT-IPS:type": "fixed",
                                                             "OS-EXT-IPS-MAC:mac_addr": p.mac}]},
                        "image": {"id": "cirros"}, "flavor": {"original_name": "m1.tiny"},
                        "OS-EXT-SRV-ATTR:host": inst["host"], "tenant_id": project})
    return {"networks": nets, "subnets": subs, "ports": ports, "agents": list(agents.values()),
            "hosting": hosting, "servers": servers, "project": project}


class LabApi:
    """`with LabApi(lab) as api:` serves the lab on http://127.0.0.1:<port>; `api.env` holds
    the OS_* variables that lead openstacksdk to it."""

    def __init__(self, lab, password: str = "lab-admin-password"):
        self.lab = lab
        self.password = password
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def env(self) -> dict[str, str]:
        return {"OS_AUTH_URL": self.base + "/identity/v3", "OS_USERNAME": "admin", "OS_PASSWORD": self.password,
                "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
                "OS_IDENTITY_API_VERSION": "3", "OS_INTERFACE": "public", "OS_REGION_NAME": "RegionOne"}

    def __enter__(self) -> "LabApi":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, body: object, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                path = urlparse(self.path).path.rstrip("/")
                api.requests.append(f"POST {path}")
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if path != "/identity/v3/auth/tokens":
                    return self._send(404, {"error": "not found"})
                pw = body.get("auth", {}).get("identity", {}).get("password", {}).get("user", {}).get("password")
                if pw != api.password:
                    return self._send(401, {"error": {"code": 401, "message": "The request you have made requires "
                                                                              "authentication."}})
                b = api.base
                ep = lambda t, url: {"type": t, "name": t, "id": t, "endpoints": [  # noqa: E731
                    {"id": t + "-public", "interface": "public", "region": "RegionOne", "region_id": "RegionOne",
                     "url": url}]}
                token = {"token": {"methods": ["password"], "expires_at": "2099-01-01T00:00:00.000000Z",
                                   "issued_at": "2020-01-01T00:00:00.000000Z",
                                   "user": {"id": "admin", "name": "admin", "domain": {"id": "default",
                                                                                        "name": "Default"}},
                                   "project": {"id": "admin", "name": "admin",
                                               "domain": {"id": "default", "name": "Default"}},
                                   "roles": [{"id": "admin", "name": "admin"}],
                                   "catalog": [ep("identity", b + "/identity/v3"), ep("network", b + "/network"),
                                               ep("compute", b + "/compute/v2.1")]}}
                return self._send(201, token, {"X-Subject-Token": TOKEN})

            def do_GET(self):
                path = urlparse(self.path).path.rstrip("/")
                api.requests.append(f"GET {path}")
                b = api.base
                if path in ("/identity", "/identity/v3"):
                    v3 = {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
                          "links": [{"rel": "self", "href": b + "/identity/v3/"}],
                          "media-types": [{"base": "application/json",
                                           "type": "application/vnd.openstack.identity-v3+json"}]}
                    return self._send(200, {"version": v3} if path.endswith("v3") else {"versions": {"values": [v3]}})
                if self.headers.get("X-Auth-Token") != TOKEN:
                    return self._send(401, {"error": "no token"})
                if path == "/network":
                    return self._send(200, {"versions": [{"id": "v2.0", "status": "CURRENT",
                                                          "links": [{"rel": "self", "href": b + "/network/v2.0/"}]}]})
                if path in ("/compute", "/compute/v2.1"):
                    v = {"id": "v2.1", "status": "CURRENT", "version": "2.79", "min_version": "2.1",
                         "updated": "2013-07-23T11:33:21Z", "links": [{"rel": "self", "href": b + "/compute/v2.1/"}]}
                    return self._send(200, {"version": v} if path.endswith("v2.1") else {"versions": [v]})
                from whynoip.lab.lab import Lab
                lab = Lab(api.lab.name)  # the control plane's SQLite connection belongs to one thread
                try:
                    views = _neutron_views(lab)
                finally:
                    lab.cp.close()
                parts = path.split("/")
                if path.startswith("/network/v2.0/"):
                    kind = parts[3]
                    if kind in ("networks", "subnets", "ports", "agents") and len(parts) == 4:
                        return self._send(200, {kind: views[kind]})
                    if kind == "networks" and len(parts) == 6 and parts[5] == "dhcp-agents":
                        return self._send(200, {"agents": views["hosting"].get(parts[4], [])})
                if path == "/compute/v2.1/servers/detail":
                    return self._send(200, {"servers": views["servers"]})
                if path == "/compute/v2.1/os-services":
                    return self._send(200, {"services": []})
                return self._send(404, {"error": f"not found: {path}"})

        return Handler
