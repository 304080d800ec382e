"""Every admin list opens: a FilterSet or list filter that does not fit its model fails here, not in front of a user."""

import pytest
from django.contrib import admin
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_every_admin_list_opens_for_a_superuser(admin_client):
    broken = []
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        answer = admin_client.get(url)
        if answer.status_code != 200:
            broken.append(f"{url} answered {answer.status_code}")
    assert not broken, "\n".join(broken)
