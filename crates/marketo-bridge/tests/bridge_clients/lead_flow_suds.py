"""A legacy integration's flow through an unmodified suds client (the SOAP
library of older Python integrations), the WSDL loaded from WSDL_URL:
syncLead a new lead with three attributes (returnLead), getLead it by email,
add it to a list by name and ask whether it is a member, describeMObject,
requestCampaign by name, program and tokens, then getLeadActivity.
Usage: python3 lead_flow_suds.py WSDL_URL USER_ID ENCRYPTION_KEY [ENDPOINT]"""
import hashlib
import hmac
import sys
from datetime import datetime, timedelta, timezone

from suds.client import Client
from suds.sax.element import Element

wsdl, user_id, key = sys.argv[1:4]
if "://" not in wsdl:
    wsdl = "file://" + wsdl
if len(sys.argv) > 4:
    client = Client(wsdl, location=sys.argv[4], cache=None)
else:
    client = Client(wsdl, cache=None)
NS = ("ns1", "http://www.marketo.com/mktows/")


def sign():
    now = datetime.now(timezone(timedelta(hours=-7)))
    timestamp = now.replace(microsecond=0).isoformat()
    signature = hmac.new(key.encode(), (timestamp + user_id).encode(), hashlib.sha1).hexdigest()
    header = Element("AuthenticationHeader", ns=NS)
    header.append(Element("mktowsUserId").setText(user_id))
    header.append(Element("requestSignature").setText(signature))
    header.append(Element("requestTimestamp").setText(timestamp))
    client.set_options(soapheaders=header)


def attribute(name, value):
    a = client.factory.create("Attribute")
    a.attrName = name
    a.attrValue = value
    return a


def print_record(record):
    print("lead:", record.Id, record.Email)
    for a in record.leadAttributeList.attribute:
        print("attribute: %s=%s" % (a.attrName, a.attrValue))


record = client.factory.create("LeadRecord")
record.Email = "flow.suds@example.com"
attributes = client.factory.create("ArrayOfAttribute")
attributes.attribute = [
    attribute("FirstName", "Ann"),
    attribute("LastName", "O'Hara & Sons"),
    attribute("Company", "Acme <Legacy>"),
]
record.leadAttributeList = attributes
sign()
result = client.service.syncLead(record, True)
print("sync:", result.syncStatus.status)
print_record(result.leadRecord)

lead_key = client.factory.create("LeadKey")
lead_key.keyType = "EMAIL"
lead_key.keyValue = "flow.suds@example.com"
sign()
result = client.service.getLead(lead_key)
print("count:", result.count)
print_record(result.leadRecordList.leadRecord[0])


def list_operation(operation):
    list_key = client.factory.create("ListKey")
    list_key.keyType = "MKTOLISTNAME"
    list_key.keyValue = "Webinar Registrants"
    members = client.factory.create("ArrayOfLeadKey")
    members.leadKey = [lead_key]
    sign()
    result = client.service.listOperation(operation, list_key, members, True)
    return "true" if result.statusList.leadStatus[0].status else "false"


print("added:", list_operation("ADDTOLIST"))
print("member:", list_operation("ISMEMBEROFLIST"))

sign()
result = client.service.describeMObject("LeadRecord")
names = [f.name for f in result.metadata.fieldList.field]
print("describe:", "FirstName" if "FirstName" in names else "none")

token = client.factory.create("Attrib")
token.name = "{{my.WebinarTitle}}"
token.value = "Migrating off SOAP"
leads = client.factory.create("ArrayOfLeadKey")
leads.leadKey = [lead_key]
tokens = client.factory.create("ArrayOfAttrib")
tokens.attrib = [token]
sign()
result = client.service.requestCampaign(
    source="MKTOWS",
    leadList=leads,
    programName="Webinars",
    campaignName="Send Webinar Reminder",
    programTokenList=tokens,
)
print("campaign:", "true" if result.success else "false")

activity_filter = client.factory.create("ActivityTypeFilter")
include = client.factory.create("ArrayOfActivityType")
include.activityType = ["AddToList", "RequestCampaign"]
activity_filter.includeTypes = include
activity_filter.excludeTypes = None
sign()
result = client.service.getLeadActivity(leadKey=lead_key, activityFilter=activity_filter)
for r in result.activityRecordList.activityRecord:
    print("activity:", r.activityType, r.mktgAssetName)
