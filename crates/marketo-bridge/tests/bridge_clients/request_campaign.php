<?php
// An unmodified PHP SoapClient, as legacy integrations use it: the WSDL is
// loaded from the bridge, requestCampaign is called through it.
// Usage: php request_campaign.php WSDL_URL USER_ID ENCRYPTION_KEY
[$_, $wsdl, $userId, $key] = $argv;

function auth_header($userId, $key) {
    $dt = new DateTime('now', new DateTimeZone('America/Los_Angeles'));
    $timestamp = $dt->format(DATE_W3C);
    $signature = hash_hmac('sha1', $timestamp . $userId, $key);
    $attrs = new stdClass();
    $attrs->mktowsUserId = $userId;
    $attrs->requestSignature = $signature;
    $attrs->requestTimestamp = $timestamp;
    return new SoapHeader('http://www.marketo.com/mktows/', 'AuthenticationHeader', $attrs);
}

function request($client, $userId, $key, $email) {
    $leadKey = new stdClass();
    $leadKey->keyType = 'EMAIL';
    $leadKey->keyValue = $email;
    $params = new stdClass();
    $params->source = 'MKTOWS';
    $params->campaignId = 4496;
    $params->leadList = [$leadKey];
    return $client->__soapCall('requestCampaign', [$params], [], auth_header($userId, $key));
}

$client = new SoapClient($wsdl, ['soap_version' => SOAP_1_1, 'trace' => 1, 'cache_wsdl' => WSDL_CACHE_NONE]);
$result = request($client, $userId, $key, 'lead@company.com');
echo 'success: ' . ($result->result->success ? 'true' : 'false') . "\n";
try {
    request($client, $userId, $key, 'nobody@example.com');
    echo "no fault for an unknown lead\n";
    exit(1);
} catch (SoapFault $fault) {
    echo 'fault: ' . $fault->detail->serviceException->code . "\n";
}
