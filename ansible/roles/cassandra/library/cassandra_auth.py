#!/usr/bin/python
"""Ansible module: replace the default superuser, raise system_auth RF, create the app role (no grants)."""

from __future__ import annotations

import re
import secrets
import sys
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule

try:
    from cassandra import AuthenticationFailed, ConsistencyLevel, Unauthorized
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
    from cassandra.policies import DCAwareRoundRobinPolicy, WhiteListRoundRobinPolicy
    from cassandra.query import SimpleStatement

    DRIVER_ERROR = ""
except ImportError as exc:  # the module runs with the cqlsh venv's interpreter, which has the driver
    DRIVER_ERROR = str(exc)

DOCUMENTATION = r"""
---
module: cassandra_auth
short_description: Bootstrap Cassandra authentication idempotently
description:
  - Logs in as the generated superuser; while that role does not exist yet, logs in as the default
    cassandra/cassandra, raises system_auth to NetworkTopologyStrategy with the given RF and creates the
    superuser.
  - Then, as the superuser, disables the default cassandra role (random password, no login, not superuser)
    and creates the application role with its password. The application keyspace and the role's grants on it
    belong to the cassandra_schema role.
  - Finally asks every node on its own to log in cassandra/cassandra, and fails naming the nodes that still
    accept it once the timeout has passed.
  - Reports changed only when it created or altered something.
options:
  hosts: {description: Contact points., type: list, elements: str, required: true}
  port: {description: CQL port., type: int, required: true}
  local_dc: {description: Data center name., type: str, required: true}
  replication_factor: {description: RF of system_auth., type: int, required: true}
  superuser: {description: Superuser role to create., type: str, required: true}
  superuser_password: {description: Its password., type: str, required: true}
  app_role: {description: Application role (LOGIN, not superuser)., type: str, required: true}
  app_password: {description: Its password., type: str, required: true}
  timeout: {description: Seconds to wait for the ring and the default role., type: int, default: 300}
"""

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
DEFAULT_ROLE = "cassandra"


class AuthRefused(Exception):
    """The credentials were refused."""


class DefaultRoleStillOpen(Exception):
    """Nodes still accept the default cassandra/cassandra login after it was disabled."""


def connect(
    params: dict[str, Any], user: str, password: str, only: str | None = None
) -> tuple[Cluster, Session]:
    """A session as user (through node `only` alone when given); AuthRefused when the login is refused,
    NoHostAvailable when no node answers."""
    policy = (
        WhiteListRoundRobinPolicy([only]) if only else DCAwareRoundRobinPolicy(local_dc=params["local_dc"])
    )
    profile = ExecutionProfile(
        load_balancing_policy=policy,
        consistency_level=ConsistencyLevel.QUORUM,
        request_timeout=60,
    )
    cluster = Cluster(
        [only] if only else params["hosts"],
        port=params["port"],
        auth_provider=PlainTextAuthProvider(username=user, password=password),
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=15,
        max_schema_agreement_wait=60,
    )
    try:
        return cluster, cluster.connect()
    except NoHostAvailable as exc:
        cluster.shutdown()
        if any(isinstance(err, AuthenticationFailed) for err in exc.errors.values()):
            raise AuthRefused(user) from exc
        raise


def login_works(params: dict[str, Any], user: str, password: str, only: str | None = None) -> bool:
    try:
        cluster, _ = connect(params, user, password, only)
    except AuthRefused:
        return False
    cluster.shutdown()
    return True


def run(
    session: Session,
    query: str,
    args: tuple[Any, ...] = (),
    consistency: int = ConsistencyLevel.QUORUM,
) -> list[Any]:
    return list(session.execute(SimpleStatement(query, consistency_level=consistency), args))


def replication_matches(session: Session, keyspace: str, dc: str, rf: int) -> bool | None:
    """Whether the keyspace uses NetworkTopologyStrategy with exactly {dc: rf}; None when it is missing."""
    rows = run(
        session, "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (keyspace,)
    )
    if not rows:
        return None
    replication = dict(rows[0].replication)
    strategy = replication.pop("class", "")
    return strategy.endswith("NetworkTopologyStrategy") and replication == {dc: str(rf)}


def ensure_auth_replication(session: Session, params: dict[str, Any], actions: list[str]) -> None:
    dc, rf = params["local_dc"], params["replication_factor"]
    if not replication_matches(session, "system_auth", dc, rf):
        run(
            session,
            f"ALTER KEYSPACE system_auth WITH replication = "
            f"{{'class': 'NetworkTopologyStrategy', '{dc}': {rf}}}",
        )
        actions.append(f"system_auth replication {dc}:{rf}")
        repair_auth_tables(session)


def repair_auth_tables(session: Session) -> None:
    """Read every row of the auth tables at ALL, which read-repairs them onto every replica.

    Rows written while system_auth had one replica (the default role, made at first start) exist on that
    replica only until a repair; after the RF is raised, reads at QUORUM or LOCAL_ONE that miss it see no
    role (a refused login, or a login that then "does not have sufficient privileges": the CI run of stop
    21). A blocking read at ALL compares every replica and writes the row to those without it."""
    for table in ("roles", "role_members", "role_permissions"):
        run(session, f"SELECT * FROM system_auth.{table}", consistency=ConsistencyLevel.ALL)


def bootstrap_superuser(params: dict[str, Any], deadline: float, actions: list[str]) -> None:
    """Until the superuser logs in: create it through the default role (which appears ~10 s after start)."""
    while True:
        if login_works(params, params["superuser"], params["superuser_password"]):
            return
        try:
            cluster, session = connect(params, DEFAULT_ROLE, DEFAULT_ROLE)
        except (AuthRefused, NoHostAvailable):
            if time.monotonic() > deadline:
                raise
            time.sleep(5)
            continue
        try:
            ensure_auth_replication(session, params, actions)
            # Also when an earlier round raised the RF: its repair may not have finished.
            repair_auth_tables(session)
            role = params["superuser"]
            # CREATE, or ALTER when it exists with another password (not both: Cassandra 5 allows
            # one password change per role every 5 s).
            verb = "CREATE ROLE IF NOT EXISTS" if role_row(session, role) is None else "ALTER ROLE"
            statement = f"{verb} {role} WITH SUPERUSER = true AND LOGIN = true AND PASSWORD = %s"
            run(session, statement, (params["superuser_password"],))
            actions.append(f"superuser {role} created")
            # Its login reads the row at LOCAL_ONE: put it on every replica, not only a quorum.
            role_row(session, role, ConsistencyLevel.ALL)
        except Unauthorized:
            # The coordinator read the default role from a replica that lacks it (see repair_auth_tables):
            # the next round repairs it; give up only at the deadline.
            if time.monotonic() > deadline:
                raise
        finally:
            cluster.shutdown()
        time.sleep(6)  # the roles cache (roles_validity) may hold the old answer; password change rate limit


def role_row(session: Session, role: str, consistency: int = ConsistencyLevel.QUORUM) -> Any:
    rows = run(
        session,
        "SELECT role, can_login, is_superuser FROM system_auth.roles WHERE role = %s",
        (role,),
        consistency,
    )
    return rows[0] if rows else None


def ensure_app_role(session: Session, params: dict[str, Any], actions: list[str]) -> None:
    role, password = params["app_role"], params["app_password"]
    row = role_row(session, role)
    if row is None:
        run(
            session,
            f"CREATE ROLE IF NOT EXISTS {role} WITH LOGIN = true AND SUPERUSER = false AND PASSWORD = %s",
            (password,),
        )
        actions.append(f"role {role} created")
    elif not row.can_login or row.is_superuser or not login_works(params, role, password):
        run(
            session,
            f"ALTER ROLE {role} WITH LOGIN = true AND SUPERUSER = false AND PASSWORD = %s",
            (password,),
        )
        actions.append(f"role {role} altered")


def disable_default_role(session: Session, actions: list[str]) -> None:
    # Read at ALL: the default role was written while system_auth had one replica. Right after the RF
    # is raised, a QUORUM read can land on two replicas that have not got it yet and see no row at all,
    # which would leave cassandra/cassandra working (the CI run of stop 19). ALL reads every replica
    # and repairs the row onto the others.
    row = role_row(session, DEFAULT_ROLE, ConsistencyLevel.ALL)
    if row is not None and (row.can_login or row.is_superuser):
        run(
            session,
            f"ALTER ROLE {DEFAULT_ROLE} WITH SUPERUSER = false AND LOGIN = false AND PASSWORD = %s",
            (secrets.token_urlsafe(32),),
        )
        actions.append(f"default role {DEFAULT_ROLE} disabled")


def default_login_accepted_by(params: dict[str, Any]) -> list[str]:
    """The nodes that still let cassandra/cassandra in, each asked on its own."""
    return [ip for ip in params["hosts"] if login_works(params, DEFAULT_ROLE, DEFAULT_ROLE, only=ip)]


def ensure(params: dict[str, Any]) -> list[str]:
    actions: list[str] = []
    deadline = time.monotonic() + params["timeout"]
    bootstrap_superuser(params, deadline, actions)
    cluster, session = connect(params, params["superuser"], params["superuser_password"])
    try:
        ensure_auth_replication(session, params, actions)
        ensure_app_role(session, params, actions)
        # The outcome that matters is checked node by node, not assumed from the ALTER: the roles cache
        # of a node (roles_validity) may answer with the old role for a moment.
        while True:
            disable_default_role(session, actions)
            accepting = default_login_accepted_by(params)
            if not accepting:
                break
            if time.monotonic() > deadline:
                raise DefaultRoleStillOpen(accepting)
            time.sleep(3)
    finally:
        cluster.shutdown()
    return actions


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "hosts": {"type": "list", "elements": "str", "required": True},
            "port": {"type": "int", "required": True},
            "local_dc": {"type": "str", "required": True},
            "replication_factor": {"type": "int", "required": True},
            "superuser": {"type": "str", "required": True},
            "superuser_password": {"type": "str", "required": True, "no_log": True},
            "app_role": {"type": "str", "required": True},
            "app_password": {"type": "str", "required": True, "no_log": True},
            "timeout": {"type": "int", "default": 300},
        },
        supports_check_mode=False,
    )
    if DRIVER_ERROR:
        module.fail_json(msg=f"cannot import cassandra-driver in {sys.executable} ({DRIVER_ERROR})")
    params = module.params
    names = [params["superuser"], params["app_role"], params["local_dc"]]
    bad = [name for name in names if not IDENTIFIER.match(name)]
    if bad:
        module.fail_json(msg=f"not plain lower-case CQL identifiers: {bad}")
    try:
        actions = ensure(params)
    except DefaultRoleStillOpen as exc:
        module.fail_json(msg=f"the default role {DEFAULT_ROLE} still logs in through {exc} once disabled")
    except (AuthRefused, NoHostAvailable) as exc:
        module.fail_json(msg=f"cannot log in as {params['superuser']} nor as the default role: {exc}")
    except Unauthorized as exc:
        module.fail_json(msg=f"the default role could not set up authentication before the timeout: {exc}")
    module.exit_json(changed=bool(actions), actions=actions)


if __name__ == "__main__":
    main()
