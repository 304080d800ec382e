"""The console home: business and technical health for the signed-in person's role."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def home(request):
    return render(request, "console/home.html", {"active": "home"})
