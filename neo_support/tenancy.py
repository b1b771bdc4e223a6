"""Tenant scoping: every customer row reaches exactly one Organization.

Each tenant model declares `organization_path`, the ORM lookup from the row to
its Organization, and uses `TenantQuerySet`, so selectors write
`Model.objects.for_organization(org)` and a cross-tenant read has to be
spelled out on purpose.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from django.db import models


class TenantQuerySet(models.QuerySet):
    def for_organization(self, organization: models.Model) -> TenantQuerySet:
        """The rows of `organization` (an Organization: typed as a model, since
        neo_support.models builds on this module)."""
        path: str = self.model.organization_path
        return cast(TenantQuerySet, self.filter(**{path: organization}))


class TenantModel(models.Model):
    organization_path: ClassVar[str]
    objects: Any = TenantQuerySet.as_manager()

    class Meta:
        abstract = True
