"""A legacy integration's flow through an unmodified zeep client, the WSDL
loaded from WSDL_URL: syncLead a new lead with three attributes (returnLead),
getLead it by email, add it to a list by name and ask whether it is a
member, describeMObject, requestCampaign by name, program and tokens for
it, then getLeadActivity (the list add and the campaign).
Usage: python3 lead_flow.py WSDL_URL USER_ID ENCRYPTION_KEY [ENDPOINT]"""
import hashlib
import hmac
import sys
from datetime import datetime, timedelta, timezone

import zeep

wsdl, user_id, key = sys.argv[1:4]
client = zeep.Client(wsdl)
service = client.service
if len(sys.argv) > 4:
    service = client.create_service(
        "{http://www.marketo.com/mktows/}MktowsApiSoapBinding", sys.argv[4]
    )


def auth_header():
    now = datetime.now(timezone(timedelta(hours=-7)))
    timestamp = now.replace(microsecond=0).isoformat()
    signature = hmac.new(key.encode(), (timestamp + user_id).encode(), hashlib.sha1).hexdigest()
    header = client.get_element("{http://www.marketo.com/mktows/}AuthenticationHeader")
    return header(mktowsUserId=user_id, requestSignature=signature, requestTimestamp=timestamp)


def print_record(record):
    print("lead:", record.Id, record.Email)
    for attribute in record.leadAttributeList.attribute:
        print("attribute: %s=%s" % (attribute.attrName, attribute.attrValue))


result = service.syncLead(
    leadRecord={
        "Email": "flow.py@example.com",
        "leadAttributeList": {
            "attribute": [
                {"attrName": "FirstName", "attrValue": "Ann"},
                {"attrName": "LastName", "attrValue": "O'Hara & Sons"},
                {"attrName": "Company", "attrValue": "Acme <Legacy>"},
            ]
        },
    },
    returnLead=True,
    _soapheaders=[auth_header()],
)
print("sync:", result.syncStatus.status)
print_record(result.leadRecord)

key1 = {"keyType": "EMAIL", "keyValue": "flow.py@example.com"}
result = service.getLead(leadKey=key1, _soapheaders=[auth_header()])
print("count:", result.count)
print_record(result.leadRecordList.leadRecord[0])

def list_operation(operation):
    result = service.listOperation(
        listOperation=operation,
        listKey={"keyType": "MKTOLISTNAME", "keyValue": "Webinar Registrants"},
        listMemberList={"leadKey": [key1]},
        strict=True,
        _soapheaders=[auth_header()],
    )
    return "true" if result.statusList.leadStatus[0].status else "false"


print("added:", list_operation("ADDTOLIST"))
print("member:", list_operation("ISMEMBEROFLIST"))

result = service.describeMObject(objectName="LeadRecord", _soapheaders=[auth_header()])
# zeep unwraps a one-field result: successDescribeMObject/result/metadata.
metadata = getattr(result, "metadata", result)
names = [f.name for f in metadata.fieldList.field]
print("describe:", "FirstName" if "FirstName" in names else "none")

result = service.requestCampaign(
    source="MKTOWS",
    leadList={"leadKey": [key1]},
    programName="Webinars",
    campaignName="Send Webinar Reminder",
    programTokenList={"attrib": [{"name": "{{my.WebinarTitle}}", "value": "Migrating off SOAP"}]},
    _soapheaders=[auth_header()],
)
success = result if isinstance(result, bool) else result.success
print("campaign:", "true" if success else "false")

result = service.getLeadActivity(
    leadKey=key1,
    activityFilter={"includeTypes": {"activityType": ["AddToList", "RequestCampaign"]}},
    _soapheaders=[auth_header()],
)
# zeep unwraps a one-field answer: successGetLeadActivity/leadActivityList.
activities = getattr(result, "leadActivityList", result)
for record in activities.activityRecordList.activityRecord:
    print("activity:", record.activityType, record.mktgAssetName)

# One of Marketo's operations the bridge does not serve: declared in its
# WSDL, answered with fault 20012.
try:
    service.getTags(_soapheaders=[auth_header()])
    print("getTags: no fault")
except zeep.exceptions.Fault as fault:
    print("not served:", "20012" if "20012" in fault.message else fault.message)
