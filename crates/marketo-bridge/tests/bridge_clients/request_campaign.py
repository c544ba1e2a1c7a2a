"""An unmodified zeep client, as legacy integrations use it: the WSDL is
loaded from the bridge, requestCampaign is called through it.
Usage: python3 request_campaign.py WSDL_URL USER_ID ENCRYPTION_KEY"""
import hashlib
import hmac
import sys
from datetime import datetime, timedelta, timezone

import zeep
from zeep.exceptions import Fault

wsdl, user_id, key = sys.argv[1:4]
client = zeep.Client(wsdl)


def auth_header():
    now = datetime.now(timezone(timedelta(hours=-7)))
    timestamp = now.replace(microsecond=0).isoformat()
    signature = hmac.new(key.encode(), (timestamp + user_id).encode(), hashlib.sha1).hexdigest()
    header = client.get_element("{http://www.marketo.com/mktows/}AuthenticationHeader")
    return header(mktowsUserId=user_id, requestSignature=signature, requestTimestamp=timestamp)


def request(email):
    return client.service.requestCampaign(
        source="MKTOWS",
        campaignId=4496,
        leadList={"leadKey": [{"keyType": "EMAIL", "keyValue": email}]},
        _soapheaders=[auth_header()],
    )


found = client.service.getCampaignsForSource(
    source="MKTOWS", name="Request Campaign Demo", exactName=True, _soapheaders=[auth_header()]
)
print("campaigns:", found.returnCount, [c.id for c in found.campaignRecordList.campaignRecord])

result = request("lead@company.com")
# zeep unwraps a one-field result: successRequestCampaign/result/success.
success = result if isinstance(result, bool) else result.success
print("success:", "true" if success is True else "false")
try:
    request("nobody@example.com")
    print("no fault for an unknown lead")
    sys.exit(1)
except Fault as fault:
    code = fault.detail.find(".//code")
    print("fault:", code.text if code is not None else fault.message)
