"""Role assignments: a principal holds a role at a scope (ARM's Microsoft.Authorization shape).

Scopes: "/" (the installation), a subscription, a resource group, a registry, or a
repository inside a registry (``<registry id>/repositories/<name>``). An assignment
covers its scope and everything below it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from dockyard.auth import roles
from dockyard.core.errors import RegistryError
from dockyard.metadata.database import Database, utcnow
from dockyard.metadata.schema import role_assignments

ASSIGNMENT_PATH = "/providers/Microsoft.Authorization/roleAssignments/"
_REPOSITORY_NAME = re.compile(
    r"@Request\[Microsoft\.ContainerRegistry/registries/repositories:name\]\s+"
    r"(StringEqualsIgnoreCase|StringEquals|StringStartsWithIgnoreCase|StringStartsWith|StringLike)\s+'([^']*)'",
    re.IGNORECASE,
)


class InvalidAssignment(RegistryError):
    code, default_message = "InvalidRoleAssignmentRequest", "the role assignment is invalid"


class AssignmentNotFound(RegistryError):
    code, default_message = "RoleAssignmentNotFound", "the role assignment was not found"


@dataclass(frozen=True, slots=True)
class Assignment:
    id: str
    scope: str
    role: roles.Role
    principal_object_id: str
    principal_type: str
    condition: str | None = None
    condition_version: str | None = None
    description: str | None = None

    @property
    def arm_id(self) -> str:
        return f"{self.scope.rstrip('/')}{ASSIGNMENT_PATH}{self.id}"

    def as_arm(self) -> dict:
        return {
            "id": self.arm_id,
            "name": self.id,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "roleDefinitionId": roles.definition_id(self.role, ""),
                "principalId": self.principal_object_id,
                "principalType": self.principal_type,
                "scope": self.scope,
                "condition": self.condition,
                "conditionVersion": self.condition_version,
                "description": self.description,
            },
        }


def repository_condition(condition: str | None):
    """A predicate over repository names from an ABAC condition; None when there is no condition.

    The conditions ACR's templates write name repositories with
    StringEquals(IgnoreCase) or StringStartsWith(IgnoreCase); any matching clause allows.
    """
    if not condition:
        return None
    clauses = _REPOSITORY_NAME.findall(condition)

    def matches(name: str) -> bool:
        for operator, value in clauses:
            op = operator.lower()
            folded = "ignorecase" in op
            left, right = (name.lower(), value.lower()) if folded else (name, value)
            if op.startswith("stringequals") and left == right:
                return True
            if op.startswith("stringstartswith") and left.startswith(right):
                return True
            if op == "stringlike" and (left == right or (right.endswith("*") and left.startswith(right[:-1]))):
                return True
        return False

    return matches


def normalize_scope(scope: str) -> str:
    scope = "/" + scope.strip().strip("/")
    return scope


def covers(scope: str, target: str) -> bool:
    scope, target = scope.lower().rstrip("/"), target.lower().rstrip("/")
    return scope == "" or target == scope or target.startswith(scope + "/")


def _assignment(row) -> Assignment | None:
    role = roles.BY_ID.get(row.role_definition_id)
    if role is None:
        return None
    return Assignment(row.id, row.scope, role, row.principal_object_id, row.principal_type,
                      row.condition, row.condition_version, row.description)


class AssignmentService:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.version = 0  # bumped on every change, so callers can drop what they cached

    async def create(
        self,
        scope: str,
        role: roles.Role,
        principal_object_id: str,
        principal_type: str = "User",
        condition: str | None = None,
        assignment_id: str | None = None,
        description: str | None = None,
        created_by: str | None = None,
    ) -> Assignment:
        scope = normalize_scope(scope)
        if condition and not role.abac:
            raise InvalidAssignment(f"The role '{role.name}' does not support conditions.")
        assignment_id = (assignment_id or str(uuid.uuid4())).lower()
        async with self.db.write() as conn:
            # the same name, or the same role for the same principal at the same scope, made at once
            await self.db.lock(
                conn,
                ("role assignment", assignment_id),
                ("role assignment of", scope.lower(), role.id, principal_object_id.lower()),
            )
            existing = (
                await conn.execute(sa.select(role_assignments).where(role_assignments.c.id == assignment_id))
            ).first()
            if existing is not None:
                if (existing.scope_lower, existing.role_definition_id, existing.principal_object_id) != (
                    scope.lower(), role.id, principal_object_id.lower()
                ):
                    raise InvalidAssignment("A role assignment with this name exists with other properties.")
            else:
                duplicate = (
                    await conn.execute(
                        sa.select(role_assignments.c.id).where(
                            role_assignments.c.scope_lower == scope.lower(),
                            role_assignments.c.role_definition_id == role.id,
                            role_assignments.c.principal_object_id == principal_object_id.lower(),
                            role_assignments.c.condition.is_(None) if condition is None
                            else role_assignments.c.condition == condition,
                        )
                    )
                ).scalar()
                if duplicate:
                    raise RoleAssignmentExists("The role assignment already exists.")
                await conn.execute(
                    sa.insert(role_assignments).values(
                        id=assignment_id, scope=scope, scope_lower=scope.lower(), role_definition_id=role.id,
                        principal_object_id=principal_object_id.lower(), principal_type=principal_type,
                        condition=condition, condition_version="2.0" if condition else None,
                        description=description, created_at=utcnow(), created_by=created_by,
                    )
                )
        self.version += 1
        return await self.get(assignment_id)

    async def get(self, assignment_id: str) -> Assignment:
        async with self.db.read() as conn:
            row = (
                await conn.execute(sa.select(role_assignments).where(role_assignments.c.id == assignment_id.lower()))
            ).first()
        assignment = _assignment(row) if row is not None else None
        if assignment is None:
            raise AssignmentNotFound(f"The role assignment '{assignment_id}' is not found.")
        return assignment

    async def delete(self, assignment_id: str) -> Assignment:
        assignment = await self.get(assignment_id)
        async with self.db.write() as conn:
            await conn.execute(sa.delete(role_assignments).where(role_assignments.c.id == assignment.id))
        self.version += 1
        return assignment

    async def list(self, scope: str | None = None, principal_object_id: str | None = None,
                   at_or_above: bool = False) -> list[Assignment]:
        """Assignments at or below ``scope`` (or, with ``at_or_above``, those that cover it)."""
        query = sa.select(role_assignments).order_by(role_assignments.c.created_at)
        if principal_object_id:
            query = query.where(role_assignments.c.principal_object_id == principal_object_id.lower())
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        found = [a for a in map(_assignment, rows) if a is not None]
        if scope is not None:
            scope = normalize_scope(scope)
            found = [a for a in found if (covers(a.scope, scope) if at_or_above else covers(scope, a.scope))]
        return found

    async def covering(self, principal_object_id: str, target: str) -> list[Assignment]:
        """The principal's assignments whose scope covers ``target``."""
        return await self.list(target, principal_object_id, at_or_above=True)


class RoleAssignmentExists(RegistryError):
    code, default_message = "RoleAssignmentExists", "the role assignment already exists"
