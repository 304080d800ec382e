"""The operations console: home, exception groups, and (console B) timeline, audit and steward pages."""

from django.contrib.auth import views as auth_views
from django.urls import path

from .views import exceptions, home

app_name = "console"

urlpatterns = [
    path("", home.home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="console/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("exceptions/", exceptions.group_list, name="exceptions"),
]
