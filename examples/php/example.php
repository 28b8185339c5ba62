<?php
/*
 * example.php: what a PHP tracker site does with mika's admin API, end to end:
 * create a user, register a torrent, read the statistics.
 *
 *   php example.php [FILE.torrent]
 *
 * Where the API is: MIKA_API_URL (default https://127.0.0.1:34001),
 * MIKA_API_KEY and MIKA_API_CACERT, or else MIKA_DATA_DIR (default .): the
 * daemon's data_dir, holding the api.key and api-cert.pem it generated.
 * Without FILE.torrent it makes a small private .torrent in memory.
 * Prints `key: value` lines; exits 1 with one line on stderr on any error.
 */

declare(strict_types=1);

require __DIR__ . '/MikaClient.php';

/** Bencoding (BEP 3), enough to write a .torrent: keys sorted as raw bytes. */
function bencode(mixed $v): string
{
    if (is_int($v)) {
        return 'i' . $v . 'e';
    }
    if (is_string($v)) {
        return strlen($v) . ':' . $v;
    }
    if (is_array($v) && array_is_list($v)) {
        return 'l' . implode('', array_map('bencode', $v)) . 'e';
    }
    if (is_array($v)) {
        ksort($v, SORT_STRING);
        $out = 'd';
        foreach ($v as $k => $item) {
            $out .= bencode((string)$k) . bencode($item);
        }
        return $out . 'e';
    }
    throw new InvalidArgumentException('bencode: unsupported type ' . gettype($v));
}

/** A private single-file .torrent of $size random bytes (the data itself is not kept). */
function make_torrent(string $name, int $size): string
{
    $pieceLength = 16384;
    $data = random_bytes($size);
    $pieces = '';
    for ($off = 0; $off < $size; $off += $pieceLength) {
        $pieces .= sha1(substr($data, $off, $pieceLength), true);
    }
    return bencode([
        'announce' => 'http://tracker.invalid/announce', // each user gets their own URL
        'info' => ['length' => $size, 'name' => $name, 'piece length' => $pieceLength,
                   'pieces' => $pieces, 'private' => 1],
    ]);
}

function client_from_env(): MikaClient
{
    $url = getenv('MIKA_API_URL') ?: 'https://127.0.0.1:34001';
    $key = getenv('MIKA_API_KEY');
    if ($key !== false && $key !== '') {
        $ca = getenv('MIKA_API_CACERT');
        return new MikaClient($url, $key, $ca === false || $ca === '' ? null : $ca);
    }
    return MikaClient::fromDataDir(getenv('MIKA_DATA_DIR') ?: '.', $url);
}

try {
    $mika = client_from_env();

    // A new member signs up: the site keeps the id, shows the announce URL.
    $user = $mika->createUser('php-example-' . bin2hex(random_bytes(4)));
    echo "user_id: {$user['id']}\n";
    echo "user_name: {$user['name']}\n";
    echo "passkey: {$user['passkey']}\n";
    echo "announce_url: {$user['announce_url']}\n";

    // An upload: register the .torrent; the tracker computes the info_hash.
    $file = $argv[1] ?? null;
    $torrent = $file !== null
        ? $mika->registerTorrentFile($file)
        : $mika->registerTorrentData(make_torrent('example.bin', 100000));
    echo "info_hash: {$torrent['info_hash']}\n";
    echo "torrent_name: {$torrent['name']}\n";
    foreach ($torrent['warnings'] ?? [] as $w) {
        echo "warning: $w\n";
    }

    // Reading back: the user's books and the tracker's totals.
    $us = $mika->userStats((int)$user['id']);
    echo "user_uploaded: {$us['uploaded']}\n";
    echo "user_downloaded: {$us['downloaded']}\n";
    $s = $mika->stats();
    echo "tracker_users: {$s['users']}\n";
    echo "tracker_torrents: {$s['torrents']}\n";
    echo "tracker_peers: {$s['peers']}\n";
    echo "tracker_uptime_seconds: {$s['uptime_seconds']}\n";

    // Errors carry the API's code: a lookup of a user that does not exist.
    try {
        $mika->getUser(4294967294);
        echo "missing_user: found?!\n";
    } catch (MikaApiException $e) {
        echo "missing_user: {$e->status} {$e->errorCode}\n";
    }
} catch (Throwable $e) {
    fwrite(STDERR, 'example.php: ' . $e->getMessage() . "\n");
    exit(1);
}
