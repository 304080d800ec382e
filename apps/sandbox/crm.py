"""The CRM sandbox, shaped after the Salesforce REST API: Accounts and Opportunities under sobjects/."""

from . import records
from .common import Answer, Context, VendorError, endpoint, not_found
from .models import SandboxRecord

KIND = "crm"
API_VERSION = "v60.0"
BASE_PATH = f"/sandbox/crm/services/data/{API_VERSION}"

TEXT, NUMBER, DATE, ACCOUNT_ID = "text", "number", "date", "account_id"

# Field → type, per object. Required fields are the ones Salesforce itself requires on create.
SOBJECTS = {
    "Account": {
        "prefix": "001",
        "required": ["Name"],
        "fields": {
            "Name": TEXT,
            "BillingCountry": TEXT,
            "BillingCountryCode": TEXT,  # with state and country picklists enabled, as most orgs have
            "Tax_Id__c": TEXT,
            "Region__c": TEXT,
            "CurrencyIsoCode": TEXT,
            "Billing_Email__c": TEXT,
            "ParentId": ACCOUNT_ID,
            "Credit_Status__c": TEXT,
            "AR_Balance__c": NUMBER,
            "ERP_Customer_Id__c": TEXT,
            "Last_Payment_Date__c": DATE,
        },
    },
    "Opportunity": {
        "prefix": "006",
        "required": ["Name", "StageName", "CloseDate"],
        "fields": {
            "Name": TEXT,
            "AccountId": ACCOUNT_ID,
            "Amount": NUMBER,
            "CurrencyIsoCode": TEXT,
            "CloseDate": DATE,
            "StageName": TEXT,
            "Contract_Type__c": TEXT,
            "Rate_Card__c": TEXT,
            "Region__c": TEXT,
            "Legal_Entity__c": TEXT,
            "Project_Status__c": TEXT,
            "ERP_Project_Id__c": TEXT,
            "PSA_Project_Id__c": TEXT,
            "Integration_Message__c": TEXT,
        },
    },
}
SYSTEM_FIELDS = {"Id", "attributes", "CreatedDate", "LastModifiedDate", "IsClosed", "IsWon"}


def _sobject(name: str) -> dict:
    spec = SOBJECTS.get(name)
    if spec is None:
        raise VendorError(404, "NOT_FOUND", "The requested resource does not exist")
    return spec


def _salesforce_time(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def render(record) -> dict:
    """A record as Salesforce answers GET sobjects/<type>/<Id>: attributes, Id, every field (null when unset)."""
    spec = SOBJECTS[record.object_type]
    body = {
        "attributes": {
            "type": record.object_type,
            "url": f"{BASE_PATH}/sobjects/{record.object_type}/{record.internal_id}",
        },
        "Id": record.internal_id,
    }
    body.update({name: record.data.get(name) for name in spec["fields"]})
    if record.object_type == "Opportunity":
        stage = record.data.get("StageName") or ""
        body["IsClosed"] = stage.startswith("Closed")
        body["IsWon"] = stage == "Closed Won"
    body["CreatedDate"] = _salesforce_time(record.created_at)
    body["LastModifiedDate"] = _salesforce_time(record.updated_at)
    return body


def _clean(sobject: str, fields: dict, *, record_id: str | None = None) -> dict:
    """The fields checked against the object's definition; a vendor-shaped 400 naming the first bad one."""
    spec = _sobject(sobject)
    cleaned = {}
    for name, value in fields.items():
        kind = spec["fields"].get(name)
        if kind is None:
            if name in SYSTEM_FIELDS:
                raise VendorError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security settings of this field.",
                    param=name,
                )
            raise VendorError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}", param=name)
        if value is None or value == "":
            cleaned[name] = None
            continue
        if kind == TEXT and not isinstance(value, str):
            raise VendorError(
                400, "JSON_PARSER_ERROR", f"{name}: expected a text value, got {type(value).__name__}", param=name
            )
        if kind == NUMBER and records.decimal_or_none(value) is None:
            raise VendorError(
                400, "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{name}: value not of required type: {value}", param=name
            )
        if kind == DATE and records.iso_date_or_none(value) is None:
            raise VendorError(
                400, "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{name}: value not of required type: {value}", param=name
            )
        if kind == ACCOUNT_ID:
            if value == record_id:
                raise VendorError(
                    400, "CIRCULAR_DEPENDENCY", f"{name}: an account cannot be its own parent", param=name
                )
            if records.find(KIND, "Account", value) is None:
                raise VendorError(
                    400,
                    "INVALID_CROSS_REFERENCE_KEY",
                    f"{name}: no Account with id '{value}' exists",
                    param=name,
                )
        cleaned[name] = value
    return cleaned


def _required_missing(sobject: str, data: dict) -> None:
    missing = [name for name in _sobject(sobject)["required"] if data.get(name) in (None, "")]
    if missing:
        raise VendorError(
            400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", param=missing[0]
        )


def _load(sobject: str, record_id: str):
    _sobject(sobject)
    record = records.find(KIND, sobject, record_id)
    if record is None:
        raise VendorError(
            404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {record_id}"
        )
    return record


def describe(ctx: Context, version: str, sobject: str) -> Answer:
    """GET sobjects/<type>: the object's name and its recently changed records."""
    spec = _sobject(sobject)
    recent = SandboxRecord.objects.filter(kind=KIND, object_type=sobject).order_by("-updated_at", "-id")[:20]
    return Answer(
        200,
        {
            "objectDescribe": {"name": sobject, "keyPrefix": spec["prefix"], "label": sobject, "createable": True},
            "recentItems": [
                {"attributes": render(record)["attributes"], "Id": record.internal_id, "Name": record.data.get("Name")}
                for record in recent
            ],
        },
    )


def create(ctx: Context, version: str, sobject: str) -> Answer:
    """POST sobjects/<type>: 201 {"id", "success": true, "errors": []}."""
    spec = _sobject(sobject)
    data = _clean(sobject, ctx.json())
    _required_missing(sobject, data)
    record_id = records.random_id(spec["prefix"], 15)
    records.create(KIND, sobject, data, internal_id=record_id)
    return Answer(
        201,
        {"id": record_id, "success": True, "errors": []},
        {"Location": f"{BASE_PATH}/sobjects/{sobject}/{record_id}"},
    )


def read(ctx: Context, version: str, sobject: str, record_id: str) -> Answer:
    """GET sobjects/<type>/<Id>."""
    return Answer(200, render(_load(sobject, record_id)))


def patch(ctx: Context, version: str, sobject: str, record_id: str) -> Answer:
    """PATCH sobjects/<type>/<Id>: update the fields sent; 204."""
    record = _load(sobject, record_id)
    changes = _clean(sobject, ctx.json(), record_id=record_id)
    data = {**record.data, **changes}
    _required_missing(sobject, data)
    records.update(record, data)
    return Answer(204)


sobject_collection = endpoint(KIND, GET=describe, POST=create)
sobject_record = endpoint(KIND, GET=read, PATCH=patch)
anything_else = not_found(KIND)
