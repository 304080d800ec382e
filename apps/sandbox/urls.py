"""Sandbox systems under /sandbox/<kind>/ (see docs/sandbox.md)."""

from django.urls import path, re_path

from . import billing, business_central, common, crm, erp, hubspot, psa, stripe

SALESFORCE = r"^crm/services/data/v(?P<version>\d+\.\d+)/sobjects/(?P<sobject>\w+)"
KANTATA = r"^psa/api/v1/(?P<collection>workspaces|time_entries|stories)"
NETSUITE = r"^erp/services/rest/record/v1/(?P<record_type>[A-Za-z]+)"
CHARGEBEE = "billing/api/v2/"
HUBSPOT = r"^hubspot/crm/v3/objects/(?P<object_type>\w+)"
STRIPE = "stripe/v1/"

urlpatterns = [
    re_path(
        r"^(?P<kind>crm|psa|erp|billing|hubspot|stripe|business-central)/_faults/?$",
        common.faults_view,
        name="sandbox-faults",
    ),
    # crm (Salesforce-like)
    re_path(SALESFORCE + r"/?$", crm.sobject_collection, name="sandbox-crm-sobject"),
    re_path(SALESFORCE + r"/(?P<record_id>\w+)/?$", crm.sobject_record, name="sandbox-crm-record"),
    re_path(r"^crm/", crm.anything_else),
    # psa (Kantata-like)
    re_path(KANTATA + r"\.json$", psa.collection_view, name="sandbox-psa-collection"),
    re_path(KANTATA + r"/(?P<record_id>\d+)\.json$", psa.record_view, name="sandbox-psa-record"),
    re_path(r"^psa/", psa.anything_else),
    # erp (NetSuite-like)
    re_path(NETSUITE + r"/?$", erp.collection_view, name="sandbox-erp-collection"),
    re_path(NETSUITE + r"/(?P<ref>(?:eid:[^/]+|\d+))/?$", erp.record_view, name="sandbox-erp-record"),
    re_path(r"^erp/", erp.anything_else),
    # billing (Chargebee-like)
    path(CHARGEBEE + "customers", billing.customers_view, name="sandbox-billing-customers"),
    path(CHARGEBEE + "customers/<str:record_id>", billing.customer_view, name="sandbox-billing-customer"),
    path(CHARGEBEE + "billing_schedules", billing.schedules_view, name="sandbox-billing-schedules"),
    path(CHARGEBEE + "billing_schedules/<str:record_id>", billing.schedule_view, name="sandbox-billing-schedule"),
    path(CHARGEBEE + "unbilled_charges", billing.charges_view, name="sandbox-billing-charges"),
    path(
        CHARGEBEE + "unbilled_charges/invoice_unbilled_charges",
        billing.invoice_charges_view,
        name="sandbox-billing-invoice-charges",
    ),
    path(CHARGEBEE + "invoices", billing.invoices_view, name="sandbox-billing-invoices"),
    path(CHARGEBEE + "invoices/<str:record_id>", billing.invoice_view, name="sandbox-billing-invoice"),
    path(
        CHARGEBEE + "invoices/<str:record_id>/record_payment",
        billing.record_payment_view,
        name="sandbox-billing-record-payment",
    ),
    re_path(r"^billing/", billing.anything_else),
    # hubspot (HubSpot CRM v3-like)
    re_path(HUBSPOT + r"/?$", hubspot.collection_view, name="sandbox-hubspot-objects"),
    re_path(HUBSPOT + r"/batch/read/?$", hubspot.batch_read_view, name="sandbox-hubspot-batch-read"),
    re_path(HUBSPOT + r"/(?P<record_id>\d+)/?$", hubspot.record_view, name="sandbox-hubspot-object"),
    re_path(
        HUBSPOT + r"/(?P<record_id>\d+)/associations/(?P<to_type>\w+)/?$",
        hubspot.associations_view,
        name="sandbox-hubspot-associations",
    ),
    re_path(
        HUBSPOT + r"/(?P<record_id>\d+)/associations/(?P<to_type>\w+)/(?P<to_id>\d+)/(?P<association_type>\w+)/?$",
        hubspot.association_view,
        name="sandbox-hubspot-association",
    ),
    re_path(r"^hubspot/", hubspot.anything_else),
    # stripe (Stripe-like)
    path(STRIPE + "customers", stripe.customers_view, name="sandbox-stripe-customers"),
    path(STRIPE + "customers/search", stripe.customer_search_view, name="sandbox-stripe-customer-search"),
    path(STRIPE + "customers/<str:record_id>", stripe.customer_view, name="sandbox-stripe-customer"),
    path(STRIPE + "products", stripe.products_view, name="sandbox-stripe-products"),
    path(STRIPE + "products/<str:record_id>", stripe.product_view, name="sandbox-stripe-product"),
    path(STRIPE + "invoiceitems", stripe.invoiceitems_view, name="sandbox-stripe-invoiceitems"),
    path(STRIPE + "invoices", stripe.invoices_view, name="sandbox-stripe-invoices"),
    path(STRIPE + "invoices/<str:record_id>", stripe.invoice_view, name="sandbox-stripe-invoice"),
    path(STRIPE + "invoices/<str:record_id>/finalize", stripe.invoice_finalize_view, name="sandbox-stripe-finalize"),
    path(STRIPE + "invoices/<str:record_id>/pay", stripe.invoice_pay_view, name="sandbox-stripe-pay"),
    re_path(r"^stripe/", stripe.anything_else),
    # business-central (Business Central API v2.0-like)
    re_path(r"^business-central/api/v2\.0/(?P<rest>.+)$", business_central.api_view, name="sandbox-business-central"),
    re_path(r"^business-central/", business_central.anything_else),
]
