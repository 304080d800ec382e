"""An admin list offers only its FilterSet's filters, with the choices the FilterSet declares."""

import pytest
from django.contrib.admin import AdminSite
from django.core.exceptions import ImproperlyConfigured

from apps.core.admin import HistoryAdmin
from apps.systems.filters import ConnectedSystemFilter, OwnershipRuleFilter
from apps.systems.models import ConnectedSystem, OwnershipRule


def test_an_admin_naming_a_filter_its_filterset_lacks_fails_at_start():
    class Wrong(HistoryAdmin):
        filterset_class = ConnectedSystemFilter
        list_filter = ["kind", "colour"]

    with pytest.raises(ImproperlyConfigured, match="colour"):
        Wrong(ConnectedSystem, AdminSite())


def test_a_free_text_filter_cannot_be_offered_in_the_sidebar_but_still_filters():
    class Dated(HistoryAdmin):
        filterset_class = OwnershipRuleFilter
        list_filter = ["effective_from"]

    with pytest.raises(ImproperlyConfigured, match="declares no choices"):
        Dated(OwnershipRule, AdminSite())


@pytest.mark.django_db
def test_the_connected_system_list_filters_by_the_apis_parameters(admin_client, systems):
    page = admin_client.get("/admin/systems/connectedsystem/", {"kind": "erp"})
    assert {row.slug for row in page.context["cl"].result_list} == {systems["erp"].slug}
    vendor = systems["erp"].vendor
    page = admin_client.get("/admin/systems/connectedsystem/", {"vendor__iexact": vendor.upper()})
    assert {row.vendor for row in page.context["cl"].result_list} == {vendor}
    assert "Also filtered by" in page.content.decode()
