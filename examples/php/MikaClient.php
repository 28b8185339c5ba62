<?php
/*
 * MikaClient.php: a small client for mika's admin API (docs/api.yaml), for a
 * tracker site written in PHP. PHP 8, the curl extension, no framework.
 *
 * Owns: HTTPS to the API (TLS 1.2 or newer, the server's certificate checked
 * against a CA file: the daemon's self-signed api-cert.pem, or your CA), the
 * bearer key, JSON in and out, and turning every API error into a
 * MikaApiException that carries the HTTP status and the API's error code.
 * Not here: retries (a 503 `store_unavailable` is the caller's to retry),
 * caching, anything about your site's own database.
 *
 *   $mika = MikaClient::fromDataDir('/var/lib/mika');   // api.key + api-cert.pem
 *   $user = $mika->createUser('alice');                 // ['id' => .., 'passkey' => .., 'announce_url' => ..]
 *   $t    = $mika->registerTorrentFile('/uploads/1.torrent');
 *   $mika->updateUser($user['id'], ['enabled' => false]);
 *
 * Never log the key: it is a password for the whole tracker.
 */

declare(strict_types=1);

/** An error answer of the API, or a failure to reach it (status 0). */
final class MikaApiException extends RuntimeException
{
    /**
     * @param int    $status    HTTP status; 0 when no answer came (connection, TLS)
     * @param string $errorCode the API's `error.code` (`not_found`, `conflict`, ...),
     *                          or `transport` / `bad_answer`
     */
    public function __construct(
        public readonly int $status,
        public readonly string $errorCode,
        string $message
    ) {
        parent::__construct($message, $status);
    }
}

final class MikaClient
{
    private string $baseUrl;

    /**
     * @param string      $baseUrl e.g. https://127.0.0.1:34001 (https only: the key is a secret)
     * @param string      $key     a bearer key (api.keys, or the generated data_dir/api.key)
     * @param string|null $caFile  PEM file to trust (the daemon's api-cert.pem); null = system CAs
     * @param int         $timeout seconds for a whole request
     */
    public function __construct(
        string $baseUrl,
        private string $key,
        private ?string $caFile = null,
        private int $timeout = 10
    ) {
        if (stripos($baseUrl, 'https://') !== 0) {
            throw new InvalidArgumentException('MikaClient: the API URL must be https://');
        }
        $this->baseUrl = rtrim($baseUrl, '/');
    }

    /** A client for the daemon on this machine: the key and certificate it wrote into data_dir. */
    public static function fromDataDir(string $dataDir, string $baseUrl = 'https://127.0.0.1:34001'): self
    {
        $key = @file_get_contents($dataDir . '/api.key');
        if ($key === false || trim($key) === '') {
            throw new RuntimeException("MikaClient: cannot read $dataDir/api.key");
        }
        return new self($baseUrl, trim($key), $dataDir . '/api-cert.pem');
    }

    // ---- users

    /** Creates a user; $fields may hold passkey, id, class_id, enabled, may_download, *_multiplier. */
    public function createUser(?string $name = null, array $fields = []): array
    {
        if ($name !== null) {
            $fields['name'] = $name;
        }
        return $this->request('POST', '/api/v1/users', $fields ?: null);
    }

    public function getUser(int $id): array
    {
        return $this->request('GET', '/api/v1/users/' . $id);
    }

    public function getUserByPasskey(string $passkey): array
    {
        return $this->request('GET', '/api/v1/users/passkey/' . rawurlencode($passkey));
    }

    /** One page: ['users' => [...], 'total' => n, 'offset' => n, 'limit' => n]. */
    public function listUsers(array $query = []): array
    {
        return $this->request('GET', '/api/v1/users', null, $query);
    }

    public function updateUser(int $id, array $fields): array
    {
        return $this->request('PATCH', '/api/v1/users/' . $id, $fields);
    }

    /** A new passkey (random unless given); the old one stops working at once. */
    public function rotatePasskey(int $id, ?string $passkey = null): array
    {
        return $this->request('POST', "/api/v1/users/$id/rotate",
                              $passkey === null ? null : ['passkey' => $passkey]);
    }

    public function deleteUser(int $id): array
    {
        return $this->request('DELETE', '/api/v1/users/' . $id);
    }

    /** uploaded, downloaded, ratio, snatches, seeding, leeching. */
    public function userStats(int $id): array
    {
        return $this->request('GET', "/api/v1/users/$id/stats");
    }

    public function userPeers(int $id, int $limit = 100): array
    {
        return $this->request('GET', "/api/v1/users/$id/peers", null, ['limit' => $limit]);
    }

    // ---- torrents

    /** Registers a .torrent file; the tracker computes the info_hash. */
    public function registerTorrentFile(string $path, array $fields = []): array
    {
        $data = @file_get_contents($path);
        if ($data === false) {
            throw new RuntimeException("MikaClient: cannot read $path");
        }
        return $this->registerTorrentData($data, $fields);
    }

    /** Registers a .torrent given as bytes (e.g. an upload still in memory). */
    public function registerTorrentData(string $torrent, array $fields = []): array
    {
        $fields['torrent_base64'] = base64_encode($torrent);
        return $this->request('POST', '/api/v1/torrents', $fields);
    }

    /** Registers a torrent by its info_hash (40 hex digits). */
    public function registerInfoHash(string $infoHashHex, array $fields = []): array
    {
        $fields['info_hash'] = $infoHashHex;
        return $this->request('POST', '/api/v1/torrents', $fields);
    }

    public function getTorrent(string $infoHashHex): array
    {
        return $this->request('GET', '/api/v1/torrents/' . rawurlencode($infoHashHex));
    }

    public function listTorrents(array $query = []): array
    {
        return $this->request('GET', '/api/v1/torrents', null, $query);
    }

    public function updateTorrent(string $infoHashHex, array $fields): array
    {
        return $this->request('PATCH', '/api/v1/torrents/' . rawurlencode($infoHashHex), $fields);
    }

    /** Later announces get "unregistered torrent: $reason". */
    public function deleteTorrent(string $infoHashHex, string $reason): array
    {
        return $this->request('DELETE', '/api/v1/torrents/' . rawurlencode($infoHashHex),
                              ['reason' => $reason]);
    }

    // ---- whitelist, classes, settings, stats

    public function whitelist(): array
    {
        return $this->request('GET', '/api/v1/whitelist')['whitelist'];
    }

    public function addWhitelist(string $prefix, string $name): array
    {
        return $this->request('POST', '/api/v1/whitelist', ['prefix' => $prefix, 'name' => $name]);
    }

    public function removeWhitelist(string $prefix): array
    {
        return $this->request('DELETE', '/api/v1/whitelist/' . rawurlencode($prefix));
    }

    public function classes(): array
    {
        return $this->request('GET', '/api/v1/classes')['classes'];
    }

    public function createClass(string $name, array $fields = []): array
    {
        $fields['name'] = $name;
        return $this->request('POST', '/api/v1/classes', $fields);
    }

    public function updateClass(int $id, array $fields): array
    {
        return $this->request('PATCH', '/api/v1/classes/' . $id, $fields);
    }

    public function deleteClass(int $id): array
    {
        return $this->request('DELETE', '/api/v1/classes/' . $id);
    }

    public function settings(): array
    {
        return $this->request('GET', '/api/v1/settings');
    }

    /** e.g. ['event' => 'freeleech', 'event_ends_at' => time() + 2 * 86400]. */
    public function updateSettings(array $fields): array
    {
        return $this->request('PUT', '/api/v1/settings', $fields);
    }

    public function stats(): array
    {
        return $this->request('GET', '/api/v1/stats');
    }

    public function health(): array
    {
        return $this->request('GET', '/health');
    }

    // ---- transport

    /**
     * One request; returns the decoded JSON object.
     * @throws MikaApiException on any non-2xx answer or transport failure
     */
    public function request(string $method, string $path, ?array $body = null, array $query = []): array
    {
        $url = $this->baseUrl . $path;
        if ($query) {
            // Booleans as the API spells them, not PHP's "1"/"".
            $q = array_map(fn($v) => is_bool($v) ? ($v ? 'true' : 'false') : $v, $query);
            $url .= '?' . http_build_query($q, '', '&', PHP_QUERY_RFC3986);
        }
        $headers = ['Authorization: Bearer ' . $this->key, 'Accept: application/json'];
        $ch = curl_init($url);
        $opts = [
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_PROTOCOLS => CURLPROTO_HTTPS,
            CURLOPT_SSL_VERIFYPEER => true,
            CURLOPT_SSL_VERIFYHOST => 2,
            CURLOPT_SSLVERSION => CURL_SSLVERSION_TLSv1_2, // 1.2 or newer
            CURLOPT_CONNECTTIMEOUT => min(10, $this->timeout),
            CURLOPT_TIMEOUT => $this->timeout,
        ];
        if ($this->caFile !== null) {
            $opts[CURLOPT_CAINFO] = $this->caFile;
        }
        if ($body !== null) {
            $opts[CURLOPT_POSTFIELDS] = json_encode($body, JSON_THROW_ON_ERROR
                | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION);
            $headers[] = 'Content-Type: application/json';
        }
        $opts[CURLOPT_HTTPHEADER] = $headers;
        curl_setopt_array($ch, $opts);
        $answer = curl_exec($ch);
        $status = (int)curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
        $error = curl_error($ch);
        curl_close($ch);
        if ($answer === false) {
            throw new MikaApiException(0, 'transport', "mika API unreachable: $error");
        }
        $doc = json_decode((string)$answer, true);
        if ($status < 200 || $status > 299) {
            $err = is_array($doc) ? ($doc['error'] ?? null) : null;
            if (is_array($err) && isset($err['code'], $err['message'])) {
                throw new MikaApiException($status, (string)$err['code'], (string)$err['message']);
            }
            throw new MikaApiException($status, 'bad_answer', "mika API answered HTTP $status");
        }
        if (!is_array($doc)) {
            throw new MikaApiException($status, 'bad_answer', 'mika API answer is not a JSON object');
        }
        return $doc;
    }
}
