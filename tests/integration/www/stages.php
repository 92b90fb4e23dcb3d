<?php
// stages.cgi as a FastCGI application (php-cgi under mod_fastcgi): the
// same stages and gates; PHP reports with its HTTP stream wrapper.
$id = $_SERVER['HTTP_X_PROGRESS_ID'];
$url = 'http://127.0.0.1:' . $_SERVER['SERVER_PORT'] . '/progress-report';
$gates = dirname($_SERVER['SCRIPT_FILENAME']) . '/gates';
$n = strlen(file_get_contents('php://input'));

function report($form) {
    global $id, $url, $gates;
    $context = stream_context_create(['http' => [
        'method' => 'POST', 'ignore_errors' => true, 'timeout' => 10,
        'header' => "X-Progress-ID: $id\r\nContent-Type: application/x-www-form-urlencoded",
        'content' => $form]]);
    file_get_contents($url, false, $context);
    $code = explode(' ', $http_response_header[0])[1];
    file_put_contents("$gates/$id.codes", "$code\n", FILE_APPEND);
}

function gate($k) {   // waits up to 30 s for the test
    global $id, $gates;
    for ($i = 0; $i < 300 && !file_exists("$gates/$id.$k"); ++$i) usleep(100000);
}

report('stage=checking&percent=50');
gate(1);
report('stage=saving+the+file');
gate(2);
header('Content-Type: text/plain');
echo "read $n bytes\n";
