<?php
// A legacy integration's flow through an unmodified PHP SoapClient, the WSDL
// loaded from WSDL_URL: syncLead a new lead with three attributes (returnLead),
// getLead it by email, add it to a list by name and ask whether it is a
// member, describeMObject, then requestCampaign by name, program
// and tokens for it.
// Usage: php lead_flow.php WSDL_URL USER_ID ENCRYPTION_KEY [ENDPOINT]
$wsdl = $argv[1]; $userId = $argv[2]; $key = $argv[3];
$endpoint = $argv[4] ?? null;

function auth_header($userId, $key) {
    $dt = new DateTime('now', new DateTimeZone('America/Los_Angeles'));
    $timestamp = $dt->format(DATE_W3C);
    $attrs = new stdClass();
    $attrs->mktowsUserId = $userId;
    $attrs->requestSignature = hash_hmac('sha1', $timestamp . $userId, $key);
    $attrs->requestTimestamp = $timestamp;
    return new SoapHeader('http://www.marketo.com/mktows/', 'AuthenticationHeader', $attrs);
}

function attribute($name, $value) {
    $a = new stdClass();
    $a->attrName = $name;
    $a->attrValue = $value;
    return $a;
}

function print_record($record) {
    echo 'lead: ' . $record->Id . ' ' . $record->Email . "\n";
    $list = $record->leadAttributeList->attribute ?? [];
    foreach (is_array($list) ? $list : [$list] as $a) {
        echo 'attribute: ' . $a->attrName . '=' . $a->attrValue . "\n";
    }
}

$options = ['soap_version' => SOAP_1_1, 'trace' => 1, 'cache_wsdl' => WSDL_CACHE_NONE];
if ($endpoint !== null) {
    $options['location'] = $endpoint;
}
$client = new SoapClient($wsdl, $options);

$record = new stdClass();
$record->Email = 'flow.php@example.com';
$record->leadAttributeList = new stdClass();
$record->leadAttributeList->attribute = [
    attribute('FirstName', 'Ann'),
    attribute('LastName', "O'Hara & Sons"),
    attribute('Company', 'Acme <Legacy>'),
];
$sync = new stdClass();
$sync->leadRecord = $record;
$sync->returnLead = true;
$result = $client->__soapCall('syncLead', [$sync], [], auth_header($userId, $key));
echo 'sync: ' . $result->result->syncStatus->status . "\n";
print_record($result->result->leadRecord);

$key1 = new stdClass();
$key1->keyType = 'EMAIL';
$key1->keyValue = 'flow.php@example.com';
$get = new stdClass();
$get->leadKey = $key1;
$result = $client->__soapCall('getLead', [$get], [], auth_header($userId, $key));
echo 'count: ' . $result->result->count . "\n";
$records = $result->result->leadRecordList->leadRecord;
print_record(is_array($records) ? $records[0] : $records);

function list_operation($client, $userId, $key, $operation, $leadKey) {
    $list = new stdClass();
    $list->listOperation = $operation;
    $list->listKey = new stdClass();
    $list->listKey->keyType = 'MKTOLISTNAME';
    $list->listKey->keyValue = 'Webinar Registrants';
    $list->listMemberList = [$leadKey];
    $list->strict = true;
    $result = $client->__soapCall('listOperation', [$list], [], auth_header($userId, $key));
    $status = $result->result->statusList->leadStatus;
    return (is_array($status) ? $status[0] : $status)->status ? 'true' : 'false';
}
echo 'added: ' . list_operation($client, $userId, $key, 'ADDTOLIST', $key1) . "\n";
echo 'member: ' . list_operation($client, $userId, $key, 'ISMEMBEROFLIST', $key1) . "\n";

$describe = new stdClass();
$describe->objectName = 'LeadRecord';
$result = $client->__soapCall('describeMObject', [$describe], [], auth_header($userId, $key));
$names = array_map(fn($f) => $f->name, $result->result->metadata->fieldList->field);
echo 'describe: ' . (in_array('FirstName', $names) ? 'FirstName' : 'none') . "\n";

$token = new stdClass();
$token->name = '{{my.WebinarTitle}}';
$token->value = 'Migrating off SOAP';
$request = new stdClass();
$request->source = 'MKTOWS';
$request->leadList = [$key1];
$request->programName = 'Webinars';
$request->campaignName = 'Send Webinar Reminder';
$request->programTokenList = [$token];
$result = $client->__soapCall('requestCampaign', [$request], [], auth_header($userId, $key));
echo 'campaign: ' . ($result->result->success ? 'true' : 'false') . "\n";

$filter = new stdClass();
$filter->includeTypes = new stdClass();
$filter->includeTypes->activityType = ['AddToList', 'RequestCampaign'];
$activity = new stdClass();
$activity->leadKey = $key1;
$activity->activityFilter = $filter;
$result = $client->__soapCall('getLeadActivity', [$activity], [], auth_header($userId, $key));
$records = $result->leadActivityList->activityRecordList->activityRecord ?? [];
foreach (is_array($records) ? $records : [$records] as $r) {
    echo 'activity: ' . $r->activityType . ' ' . $r->mktgAssetName . "\n";
}

// One of Marketo's operations the bridge does not serve: declared in its
// WSDL, answered with fault 20012.
try {
    $client->__soapCall('getTags', [new stdClass()], [], auth_header($userId, $key));
    echo "getTags: no fault\n";
} catch (SoapFault $fault) {
    echo 'not served: ' . $fault->detail->serviceException->code . "\n";
}
