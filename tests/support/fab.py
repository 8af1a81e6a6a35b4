"""Airflow's FAB auth manager (``apache-airflow-providers-fab``) in a test deployment, as production
deployments use it: users and roles in the metadata database, JWTs from FAB's ``POST /auth/token``.

The roles and users are made by one Python process through FAB's security manager, between ``airflow db
migrate`` and the start of the deployment's processes: what ``airflow roles create``, ``airflow roles
add-perms`` and ``airflow users create`` do, in one process instead of four (each CLI call starts Airflow
and FAB's Flask app again: several seconds on 2 cores). It also makes FAB sync its built-in roles and
permissions once, before the API server's worker processes start (each syncs them at start-up: with the
rows already there, they do not race to insert the same ones).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.support.deployment import AirflowStack

FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
READ = "can_read"
DAG_RUNS = "DAG Runs"  # FAB's resource for the runs of every DAG the user may read


@dataclass(frozen=True)
class FabRole:
    """A role and its permissions, each ``(action, resource)`` as FAB names them (``can_read``,
    ``DAG:<dag_id>``)."""

    name: str
    permissions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class FabUser:
    username: str
    password: str
    role: str  # a built-in role (Admin, Viewer…) or one of the deployment's FabRole


ADMIN = FabUser("admin", "admin-password", "Admin")


def dag_reader(name: str, *dag_ids: str) -> FabRole:
    """A role that may read these DAGs and their runs, and no other DAG: FAB's per-DAG resource
    ``DAG:<dag_id>`` (never ``DAGs``, which would be every DAG) plus ``DAG Runs``."""
    return FabRole(name, ((READ, DAG_RUNS), *((READ, f"DAG:{dag_id}") for dag_id in dag_ids)))


# Run by the deployment's interpreter (its virtualenv: nothing of this checkout is importable there), with
# the roles and users as JSON in argv[1].
CREATE = """
import json
import sys

from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

spec = json.loads(sys.argv[1])
with get_application_builder() as appbuilder:
    sm = appbuilder.sm
    for name, permissions in spec["roles"].items():
        role = sm.find_role(name) or sm.add_role(name)
        for action, resource in permissions:
            sm.add_permission_to_role(role, sm.create_permission(action, resource))
    for user in spec["users"]:
        role = sm.find_role(user["role"])
        assert role is not None, f"no role {user['role']!r}"
        name = user["username"]
        made = sm.add_user(name, name, "Test", f"{name}@example.com", role, user["password"])
        assert made, f"user {name!r} not created"
print("roles and users created")
"""


def create_roles_and_users(
    stack: AirflowStack, roles: tuple[FabRole, ...], users: tuple[FabUser, ...]
) -> None:
    """Make ``roles`` and ``users`` in the deployment's database (after ``db migrate``, before its
    processes start)."""
    spec = {
        "roles": {role.name: [list(p) for p in role.permissions] for role in roles},
        "users": [{"username": u.username, "password": u.password, "role": u.role} for u in users],
    }
    stack.python_code(CREATE, json.dumps(spec))
