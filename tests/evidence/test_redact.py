"""Secrets planted in every kind of input never appear in what `whynoip facts` prints."""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import tarfile

import pytest
from click.testing import CliRunner

from whynoip.cli import cli
from whynoip.evidence.redact import MASK, redact, redact_fact
from whynoip.facts import ConfigValue, LogEvent, Origin

SECRETS = ["Rabb1tPass", "Rabb2tPass", "Db5ecretPw", "AdminPw0rd", "MetaS3cret", "gAAAAABtoken123",
           "gAAAAABtoken456", "Bearer0Token", "OsPassw0rd", "CliPassw0rd", "Secr3tArg", "JsonPassw0rd",
           "QueryT0ken", "GzDbPassw0rd"]


def _key_body() -> list[str]:
    rnd = random.Random(7)
    raw = base64.b64encode(bytes(rnd.getrandbits(8) for _ in range(600))).decode()
    return [raw[i:i + 64] for i in range(0, len(raw), 64)]


KEY_BODY = _key_body()
PEM = ["-----BEGIN RSA PRIVATE KEY-----", *KEY_BODY, "-----END RSA PRIVATE KEY-----"]


@pytest.mark.parametrize("text, shown", [
    ("transport_url = rabbit://openstack:Rabb1tPass@10.0.0.5:5672,openstack:Rabb2tPass@10.0.0.6:5672/",
     "transport_url = rabbit://openstack:***@10.0.0.5:5672,openstack:***@10.0.0.6:5672/"),
    ("connection = mysql+pymysql://neutron:Db5ecretPw@10.0.0.7/neutron",
     "connection = mysql+pymysql://neutron:***@10.0.0.7/neutron"),
    ("admin_password = AdminPw0rd", "admin_password = ***"),
    ("export OS_PASSWORD=OsPassw0rd", "export OS_PASSWORD=***"),
    ("openstack --os-password CliPassw0rd port list", "openstack --os-password *** port list"),
    ("REQ: curl -g -i -X GET http://10.0.0.1:9696 -H \"X-Auth-Token: gAAAAABtoken123\"",
     "REQ: curl -g -i -X GET http://10.0.0.1:9696 -H \"X-Auth-Token: ***\""),
    ("{'X-Auth-Token': 'gAAAAABtoken456', 'Accept': 'application/json'}",
     "{'X-Auth-Token': '***', 'Accept': 'application/json'}"),
    ('{"password": "JsonPassw0rd", "name": "admin"}', '{"password": "***", "name": "admin"}'),
    ("Authorization: Bearer Bearer0Token", "Authorization: Bearer ***"),
    ("GET /v3/auth?token=QueryT0ken&x=1", "GET /v3/auth?token=***&x=1"),
    ("\n".join(PEM), "-----BEGIN RSA PRIVATE KEY----- ***"),
])
def test_redact(text, shown):
    assert redact(text) == shown


@pytest.mark.parametrize("text", [
    "auth_url = http://10.0.0.1:5000/v3", "token_cache_time = 300", "DHCPACK(tap1) 10.0.0.5 fa:16:3e:4a:0b:91",
    "options: {key=flow, remote_ip=10.0.0.2}", "Trigger reload_allocations for port admin_state_up=True",
])
def test_no_false_alarm(text):
    assert redact(text) == text


def test_config_value_secret_by_key():
    o = Origin(path="etc/neutron/neutron.conf", line=3, text="admin_password = AdminPw0rd")
    f = redact_fact(ConfigValue(origin=o, file="neutron.conf", section="keystone_authtoken", key="admin_password",
                                value="AdminPw0rd"))
    assert f.value == MASK and "AdminPw0rd" not in f.origin.text
    keep = redact_fact(ConfigValue(origin=o, file="x", section="DEFAULT", key="token_cache_time", value="300"))
    assert keep.value == "300"
    url = redact_fact(ConfigValue(origin=o, file="x", section="DEFAULT", key="transport_url",
                                  value="rabbit://u:Rabb1tPass@h:5672/"))
    assert url.value == "rabbit://u:***@h:5672/"
    params = redact_fact(LogEvent(origin=o, message="x", params={"password": "AdminPw0rd", "port": "p1"}))
    assert params.params == {"password": MASK, "port": "p1"}


def _plant(root):
    conf = root / "sos" / "etc" / "neutron" / "neutron.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("[DEFAULT]\n"
                    "transport_url = rabbit://openstack:Rabb1tPass@10.0.0.5:5672,openstack:Rabb2tPass@10.0.0.6:5672/\n"
                    "[database]\nconnection = mysql+pymysql://neutron:Db5ecretPw@10.0.0.7/neutron\n"
                    "[keystone_authtoken]\nadmin_password = AdminPw0rd\n"
                    "metadata_proxy_shared_secret = MetaS3cret\n")
    (root / "sos" / "var" / "log" / "neutron").mkdir(parents=True)
    (root / "sos" / "var" / "log" / "neutron" / "neutron-server.log").write_text(
        '2022-02-09 22:39:01.123 1 DEBUG keystoneauth.session [-] REQ: curl -g -i -X GET http://10.0.0.1:9696 '
        '-H "X-Auth-Token: gAAAAABtoken123"\n'
        "2022-02-09 22:39:01.124 1 DEBUG x [-] headers {'X-Auth-Token': 'gAAAAABtoken456'}\n"
        "2022-02-09 22:39:01.125 1 DEBUG x [-] Authorization: Bearer Bearer0Token\n"
        "2022-02-09 22:39:01.126 1 DEBUG x [-] GET /v3/auth?token=QueryT0ken&x=1\n"
        "2022-02-09 22:39:01.127 1 DEBUG x [-] loaded key:\n" + "\n".join(PEM) + "\n")
    (root / "sos" / "sos_commands" / "process").mkdir(parents=True)
    (root / "sos" / "sos_commands" / "process" / "ps_auxwwwm").write_text(
        "USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND\n"
        "root 1 0.0 0.0 1 1 ? S 10:00 0:00 /usr/bin/agent --password=Secr3tArg --debug\n")
    (root / "sos" / "etc" / "ssl" / "private").mkdir(parents=True)
    (root / "sos" / "etc" / "ssl" / "private" / "key.pem").write_text("\n".join(PEM) + "\n")
    ticket = root / "ticket.txt"
    ticket.write_text("\n".join([
        "root@ctl:~# export OS_PASSWORD=OsPassw0rd",
        "root@ctl:~# openstack --os-password CliPassw0rd port list -f json",
        '[{"password": "JsonPassw0rd", "id": "p1"}]',
        "root@ctl:~# cat /root/.ssh/id_rsa", *PEM,
        "root@ctl:~# grep connection /etc/neutron/neutron.conf",
        "connection = mysql+pymysql://neutron:Db5ecretPw@10.0.0.7/neutron", ""]))
    (root / "neutron-server.log.1.gz").write_bytes(gzip.compress(
        b"2022-02-09 22:39:01.123 1 ERROR oslo_db [-] mysql+pymysql://neutron:GzDbPassw0rd@db/neutron gone\n"))
    with tarfile.open(root / "case.tar.gz", "w:gz") as tf:
        tf.add(root / "sos", arcname="sosreport-ctl")
        tf.add(ticket, arcname="ticket.txt")
    return [str(root / "sos"), str(ticket), str(root / "neutron-server.log.1.gz"), str(root / "case.tar.gz")]


def _assert_clean(out: str):
    leaked = [s for s in SECRETS if s in out] + [b for b in KEY_BODY if b in out]
    assert leaked == []


@pytest.mark.parametrize("registry", ["fake", "real"])
def test_no_secret_is_printed_json_or_text(registry, tmp_path, request, monkeypatch):
    if registry == "fake":
        request.getfixturevalue("fake_parsers")
    paths = _plant(tmp_path)
    runner = CliRunner()
    res = runner.invoke(cli, ["facts", "-f", "json", *paths])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["facts"]
    _assert_clean(res.output)
    if registry == "fake":
        # the planted lines did become facts, with the secrets masked
        messages = [f.get("message", "") for f in data["facts"]]
        assert any("X-Auth-Token: ***" in m for m in messages)
        values = {f["key"]: f["value"] for f in data["facts"] if f["type"] == "config"}
        assert values["admin_password"] == MASK and values["metadata_proxy_shared_secret"] == MASK
        assert any(m == "[private key redacted]" for m in messages)
    monkeypatch.setenv("COLUMNS", "2000")
    res = runner.invoke(cli, ["facts", "-f", "text", "--limit", "0", *paths])
    assert res.exit_code == 0, res.output
    _assert_clean(res.output)
    assert os.path.basename(paths[1]) in res.output
