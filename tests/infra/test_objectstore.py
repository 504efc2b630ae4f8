"""The objectstore role: SeaweedFS (`weed server`) as the seaweedfs unit, master, volume server and filer on
loopback, the S3 gateway on the private address answering signed requests only, the contract's bucket, and
what each identity may do there (checked with boto3 from the control node)."""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import correnteza_ops as ops
import pytest
import requests
import testinfra
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

testinfra_hosts = ["ansible://objectstore"]

UNIT = "seaweedfs"
# HTTP ports of the master, the volume server and the filer, and their gRPC ports (10000 above).
INTERNAL_PORTS = [9333, 19333, 8380, 18380, 8888, 18888]


def ip_of(host: testinfra.host.Host) -> str:
    return str(host.ansible.get_variables()["correnteza_ip"])


def main_pid(host: testinfra.host.Host) -> str:
    pid = host.check_output(f"systemctl show -p MainPID --value {UNIT}")
    assert pid not in ("", "0"), f"{UNIT} has no main process"
    return pid


def endpoint() -> str:
    """The S3 API on the object store host's private address (inventory + contract)."""
    return f"http://{ops.inventory().first('objectstore').ip}:{ops.contract().ports.s3}"


def client(identity: str | None, secret_key: str | None = None) -> Any:
    """A boto3 S3 client as the contract's identity `identity` (pipeline, reader or admin; its keys from the
    secrets folder), unsigned when identity is None; secret_key replaces the identity's secret."""
    import boto3

    config = Config(
        signature_version=UNSIGNED if identity is None else "s3v4",
        s3={"addressing_style": "path"},
        retries={"mode": "standard", "total_max_attempts": 2},
        connect_timeout=5,
        read_timeout=30,
    )
    keys = {}
    if identity is not None:
        name = getattr(ops.contract().s3, f"{identity}_identity")
        keys = {
            "aws_access_key_id": ops.secret(f"s3_{name}_access_key"),
            "aws_secret_access_key": secret_key or ops.secret(f"s3_{name}_secret_key"),
        }
    return boto3.client(
        "s3", endpoint_url=endpoint(), region_name=ops.contract().s3.region, config=config, **keys
    )


def error_code(err: ClientError) -> tuple[int, str]:
    return int(err.response["ResponseMetadata"]["HTTPStatusCode"]), str(err.response["Error"].get("Code", ""))


@pytest.fixture(scope="module")
def bucket() -> str:
    return ops.contract().s3.bucket


@pytest.fixture()
def probe_object(bucket: str) -> Iterator[tuple[str, bytes]]:
    """An object the pipeline wrote (outside the archive's prefix), removed afterwards."""
    key = f"infra-probe/{uuid.uuid4().hex}.txt"
    body = b"objectstore infra probe\n"
    pipeline = client("pipeline")
    pipeline.put_object(Bucket=bucket, Key=key, Body=body)
    yield key, body
    pipeline.delete_object(Bucket=bucket, Key=key)


# --- the unit on the host ----------------------------------------------------------------------------------


def test_service_running_and_enabled(host: testinfra.host.Host) -> None:
    unit = host.service(UNIT)
    assert unit.is_running
    assert unit.is_enabled


def test_runs_as_its_own_user(host: testinfra.host.Host) -> None:
    assert host.check_output(f"systemctl show -p User --value {UNIT}") == "correnteza-objectstore"
    assert host.check_output(f"ps -o user= -p {main_pid(host)}") == "correnteza-objectstore"


def test_telemetry_is_off(host: testinfra.host.Host) -> None:
    args = host.check_output(f"sudo cat /proc/{main_pid(host)}/cmdline").split("\0")
    assert "server" in args
    assert "-master.telemetry=false" in args, args


def test_the_binary_is_the_cached_static_build(host: testinfra.host.Host) -> None:
    """The process runs the weed that scripts/build-seaweedfs.sh built on the control node, byte for byte."""
    # argv[0] (the unit starts it by its absolute path; /proc/<pid>/exe needs CAP_SYS_PTRACE in a container).
    exe = host.check_output(f"sudo cat /proc/{main_pid(host)}/cmdline").split("\0")[0]
    assert exe == "/opt/correnteza/seaweedfs/weed"
    assert host.file(exe).mode == 0o755
    assert host.file(exe).user == "root"
    script = ops.ROOT / "scripts" / "build-seaweedfs.sh"
    built = subprocess.run([str(script), "--path"], capture_output=True, text=True, check=True).stdout.strip()
    assert host.file(exe).sha256sum == hashlib.sha256(Path(built).read_bytes()).hexdigest()
    # A static binary (CGO_ENABLED=0): no dynamic loader, no libc needed on the host.
    ldd = host.run(f"ldd {exe}")
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr


def test_s3_gateway_on_the_private_address_only(host: testinfra.host.Host) -> None:
    port = ops.contract().ports.s3
    assert host.socket(f"tcp://{ip_of(host)}:{port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
    assert not host.socket(f"tcp://127.0.0.1:{port}").is_listening


@pytest.mark.parametrize("port", INTERNAL_PORTS)
def test_master_volume_and_filer_on_loopback_only(host: testinfra.host.Host, port: int) -> None:
    assert host.socket(f"tcp://127.0.0.1:{port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
    assert not host.socket(f"tcp://{ip_of(host)}:{port}").is_listening


def test_nothing_else_answers_on_the_network(host: testinfra.host.Host) -> None:
    """Every TCP listener of the host is on loopback, except sshd and the S3 gateway (HTTP, and its gRPC port,
    which takes admin calls only from local peers). No Iceberg, Lance, metrics or IAM listener."""
    s3 = ops.contract().ports.s3
    listeners = {line.split()[3] for line in host.check_output("ss -Htln").splitlines()}
    assert f"{ip_of(host)}:{s3}" in listeners, listeners
    exposed = {a for a in listeners if not a.startswith("127.") and not a.endswith(":22")}
    # Besides the gateway: the node exporter every host runs (its own role's test covers it).
    node = ops.contract().ports.node_exporter
    assert exposed <= {f"{ip_of(host)}:{s3}", f"{ip_of(host)}:{s3 + 10000}", f"{ip_of(host)}:{node}"}, exposed


def test_identities_file_is_private(host: testinfra.host.Host) -> None:
    path = "/etc/correnteza/objectstore/s3.json"
    assert host.check_output(f"sudo stat -c %a:%U:%G {path}") == "640:root:correnteza-objectstore"
    config = host.check_output(f"sudo cat {path}")
    names = ops.contract().s3
    identities = (names.pipeline_identity, names.reader_identity, names.admin_identity)
    # Booleans only: a failing assertion must not print the file's keys.
    missing = [
        i for i in identities if f'"{i}"' not in config or ops.secret(f"s3_{i}_access_key") not in config
    ]
    assert not missing, f"identities missing from {path}, or with other keys: {missing}"
    assert '"anonymous"' not in config


def test_no_secret_in_the_journal(host: testinfra.host.Host) -> None:
    journal = host.check_output(f"sudo journalctl -u {UNIT} --no-pager -o cat | tail -n 5000")
    leaked = [i for i in ("pipeline", "reader", "admin") if ops.secret(f"s3_{i}_secret_key") in journal]
    assert not leaked, f"the secret key of {leaked} is in the journal of {UNIT}"


def test_data_on_the_data_volume(host: testinfra.host.Host) -> None:
    data = ops.contract().paths["data_dir"]
    assert host.check_output(f"findmnt -n -o TARGET -T {data}/seaweedfs") == data
    for folder in ("master", "volume"):
        owner = host.check_output(f"sudo stat -c %F:%U:%a {data}/seaweedfs/{folder}")
        assert owner == "directory:correnteza-objectstore:750"
    # The bucket is a collection of volumes there (its .dat/.idx files).
    files = host.check_output(f"sudo ls {data}/seaweedfs/volume").split()
    assert any(f.startswith(ops.contract().s3.bucket + "_") and f.endswith(".dat") for f in files), files


def test_master_lists_the_volume_server(host: testinfra.host.Host) -> None:
    status = host.check_output("curl -sf http://127.0.0.1:9333/dir/status")
    assert '"127.0.0.1:8380"' in status


def test_the_filer_is_healthy(host: testinfra.host.Host) -> None:
    assert host.check_output("curl -s -o /dev/null -w %{http_code} http://127.0.0.1:8888/healthz") == "200"


# --- the S3 API, from the control node ----------------------------------------------------------------------


def test_bucket_exists(bucket: str) -> None:
    admin = client("admin")
    assert admin.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert bucket in [b["Name"] for b in admin.list_buckets()["Buckets"]]


def test_health_endpoint_answers() -> None:
    assert requests.get(endpoint() + "/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_anonymous_requests_are_refused(bucket: str, method: str) -> None:
    url = f"{endpoint()}/{bucket}/" + ("" if method == "GET" else "infra-probe/anonymous.txt")
    answer = requests.request(method, url, data=b"x" if method == "PUT" else None, timeout=10)
    assert answer.status_code == 403, answer.text
    assert "AccessDenied" in answer.text


@pytest.mark.parametrize("operation", ["list_objects_v2", "list_buckets", "put_object"])
def test_anonymous_boto3_requests_are_refused(bucket: str, operation: str) -> None:
    args = {"list_objects_v2": {"Bucket": bucket}, "list_buckets": {}}
    args["put_object"] = {"Bucket": bucket, "Key": "infra-probe/anonymous.txt", "Body": b"x"}
    with pytest.raises(ClientError) as refused:
        getattr(client(None), operation)(**args[operation])
    assert error_code(refused.value) == (403, "AccessDenied")


@pytest.mark.parametrize("identity", ["pipeline", "reader", "admin"])
def test_a_wrong_secret_is_refused(bucket: str, identity: str) -> None:
    with pytest.raises(ClientError) as refused:
        client(identity, secret_key="not-the-secret-key").list_objects_v2(Bucket=bucket)
    assert error_code(refused.value) == (403, "SignatureDoesNotMatch")


def test_the_reader_lists_and_gets(bucket: str, probe_object: tuple[str, bytes]) -> None:
    key, body = probe_object
    reader = client("reader")
    listed = reader.list_objects_v2(Bucket=bucket, Prefix="infra-probe/")
    assert key in [o["Key"] for o in listed.get("Contents", [])]
    assert reader.get_object(Bucket=bucket, Key=key)["Body"].read() == body


def test_the_reader_cannot_write_or_delete(bucket: str, probe_object: tuple[str, bytes]) -> None:
    key, body = probe_object
    reader = client("reader")
    with pytest.raises(ClientError) as put:
        reader.put_object(Bucket=bucket, Key=f"infra-probe/{uuid.uuid4().hex}.txt", Body=b"no")
    assert error_code(put.value) == (403, "AccessDenied")
    with pytest.raises(ClientError) as delete:
        reader.delete_object(Bucket=bucket, Key=key)
    assert error_code(delete.value) == (403, "AccessDenied")
    assert client("pipeline").get_object(Bucket=bucket, Key=key)["Body"].read() == body


def test_the_pipeline_puts_gets_and_deletes(bucket: str) -> None:
    pipeline = client("pipeline")
    key = f"infra-probe/{uuid.uuid4().hex}.json.gz"
    body = uuid.uuid4().bytes * 64
    try:
        pipeline.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"seed": "infra", "page": "1"})
        got = pipeline.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == body
        assert got["Metadata"] == {"seed": "infra", "page": "1"}
    finally:
        pipeline.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(ClientError) as gone:
        pipeline.head_object(Bucket=bucket, Key=key)
    assert error_code(gone.value)[0] == 404


@pytest.mark.parametrize("identity", ["pipeline", "reader"])
def test_only_the_admin_manages_buckets(identity: str) -> None:
    name = f"infra-probe-{uuid.uuid4().hex[:12]}"
    with pytest.raises(ClientError) as refused:
        client(identity).create_bucket(Bucket=name)
    assert error_code(refused.value) == (403, "AccessDenied")
    assert name not in [b["Name"] for b in client("admin").list_buckets()["Buckets"]]
