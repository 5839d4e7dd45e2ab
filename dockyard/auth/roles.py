"""Azure's built-in roles that matter to a container registry, with their ids and meaning here.

`control` is what a role allows on the management plane: "*" (everything but role
assignments), "owner" (everything), "read". `data` is the set of registry actions it
grants on repositories (Docker scope actions) and whether it lists the catalog.
`abac` roles are honoured in both modes and take repository conditions; the
others grant data actions only in the legacy mode (`LegacyRegistryPermissions`).
"""

from __future__ import annotations

from dataclasses import dataclass

PULL = frozenset({"pull", "metadata_read"})
PUSH = PULL | {"push", "metadata_write"}
ALL = PUSH | {"delete"}


@dataclass(frozen=True, slots=True)
class Role:
    id: str
    name: str
    description: str
    control: str | None = None  # "owner", "write", "read" or None
    data: frozenset[str] = frozenset()
    catalog: bool = False
    abac: bool = False


ROLES: tuple[Role, ...] = (
    Role("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner", "Grants full access to manage all resources, including assigning roles.", "owner", ALL, True),
    Role("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor", "Grants full access to manage all resources, but not to assign roles.", "write", ALL, True),
    Role("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader", "View all resources, but make no changes.", "read", PULL, True),
    Role("7f951dda-4ed3-4680-a7ca-43fe172d538d", "AcrPull", "acr pull", None, PULL, True),
    Role("8311e382-0749-4cb8-b61a-304f252e45ec", "AcrPush", "acr push", None, PUSH, True),
    Role("c2f4ef07-c644-48eb-af81-4b1b4947fb11", "AcrDelete", "acr delete", None, frozenset({"delete", "metadata_read"})),
    Role("6cef56e8-d556-48e5-a04f-b8e64114680f", "AcrImageSigner", "acr image signer"),
    Role("cdda3590-29a3-44f6-95f2-9f980659eb04", "AcrQuarantineReader", "acr quarantine data reader"),
    Role("c8d4ff99-41c3-41a8-9f60-21dfdad59608", "AcrQuarantineWriter", "acr quarantine data writer"),
    Role("b93aa761-3e63-49ed-ac28-beffa264f7ac", "Container Registry Repository Reader", "Read images and their metadata in repositories.", None, PULL, abac=True),
    Role("2a1e307c-b015-4ebd-883e-5b7698a07328", "Container Registry Repository Writer", "Read and write images and metadata, no delete.", None, PUSH, abac=True),
    Role("2efddaa5-3f1f-4df3-97df-af3f13818f4c", "Container Registry Repository Contributor", "Read, write and delete images and metadata.", None, ALL, abac=True),
    Role("bfdb9389-c9a5-478a-bb2f-ba9ca092c3c7", "Container Registry Repository Catalog Lister", "List all repositories in the registry.", None, frozenset(), True, abac=True),
)

BY_ID = {role.id: role for role in ROLES}
BY_NAME = {role.name.lower(): role for role in ROLES}

DEFINITION_PATH = "/providers/Microsoft.Authorization/roleDefinitions/"


def find(reference: str) -> Role | None:
    """A role by name (any case), GUID, or ARM role definition id."""
    key = reference.strip()
    if DEFINITION_PATH.lower() in key.lower():
        key = key.rsplit("/", 1)[-1]
    return BY_ID.get(key.lower()) or BY_NAME.get(key.lower())


def definition_id(role: Role, scope: str = "") -> str:
    return f"{scope.rstrip('/')}{DEFINITION_PATH}{role.id}"


def as_arm(role: Role, scope: str = "") -> dict:
    return {
        "id": definition_id(role, scope),
        "name": role.id,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": role.name,
            "type": "BuiltInRole",
            "description": role.description,
            "assignableScopes": ["/"],
            "permissions": [{"actions": [], "notActions": [], "dataActions": sorted(role.data), "notDataActions": []}],
        },
    }
