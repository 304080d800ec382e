from django.urls import reverse


def test_anonymous_visitor_is_sent_to_sign_in(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("console:login"))


def test_signed_in_finance_ops_sees_the_console_header(client, finance_user):
    client.force_login(finance_user)
    response = client.get("/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Northwind Advisory" in body
    assert "finance ops" in body
    assert 'action="/timeline/"' in body
