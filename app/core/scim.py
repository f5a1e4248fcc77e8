"""SCIM names of the Elevo profile (../contracts/elevo/README.md)."""

from typing import Final

CORE_USER: Final = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE: Final = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ELEVO: Final = "urn:ietf:params:scim:schemas:extension:elevo:2.0:User"
PATCH_OP: Final = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_RESPONSE: Final = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SYNC_SOURCE_VALUE: Final = "lucca"

# Flat attribute paths: the keys of a profile's comparable view, of a plan's diff and of
# the PATCH operations built from it.
USER_NAME: Final = "userName"
GIVEN_NAME: Final = "name.givenName"
FAMILY_NAME: Final = "name.familyName"
TITLE: Final = "title"
ACTIVE: Final = "active"
WORK_EMAIL: Final = 'emails[type eq "work"].value'
EMPLOYEE_NUMBER: Final = f"{ENTERPRISE}:employeeNumber"
DEPARTMENT: Final = f"{ENTERPRISE}:department"
MANAGER: Final = f"{ENTERPRISE}:manager.value"
WORK_START_DATE: Final = f"{ELEVO}:workStartDate"
SYNC_SOURCE: Final = f"{ELEVO}:syncSource"
CUSTOM_FIELDS: Final = f"{ELEVO}:customFields"


def custom_field_path(name: str) -> str:
    return f'{CUSTOM_FIELDS}[name eq "{name}"].value'


def custom_field_name(path: str) -> str | None:
    prefix = f'{CUSTOM_FIELDS}[name eq "'
    if path.startswith(prefix) and path.endswith('"].value'):
        return path[len(prefix) : -len('"].value')]
    return None
