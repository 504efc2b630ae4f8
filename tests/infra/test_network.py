"""A TCP round trip between two hosts of the private network."""

from __future__ import annotations

import secrets

import testinfra

testinfra_hosts = ["ansible://source-1"]

PORT = 45999


def test_tcp_round_trip_between_two_hosts(host, group_hosts):
    # A one-shot listener on the source host; a client on a Kafka host sends a token.
    server_ip = group_hosts("source")["source-1"]["correnteza_ip"]
    client = testinfra.get_host("ansible://kafka-1")
    token = secrets.token_hex(8)
    # An echo server that answers one connection with the reversed token.
    server = (
        f"import socket; s = socket.create_server(('{server_ip}', {PORT})); s.settimeout(20); "
        "c, _ = s.accept(); c.sendall(c.recv(64)[::-1]); c.close()"
    )
    host.run(f'(timeout 25 python3 -c "{server}" >/dev/null 2>&1 &); sleep 1')
    client_code = (
        f"import socket; c = socket.create_connection(('{server_ip}', {PORT}), timeout=5); "
        f"c.sendall(b'{token}'); print(c.recv(64).decode())"
    )
    answer = client.run(f'python3 -c "{client_code}"')
    assert answer.rc == 0, answer.stderr
    assert answer.stdout.strip() == token[::-1]
