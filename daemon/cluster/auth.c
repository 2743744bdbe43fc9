// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * auth.c - the cluster key: loading it (refusing a key others can read) and
 * HMAC-SHA256, used for the peer handshake's challenge-response and for the
 * per-message MACs of an authenticated session.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/hmac.h>

#include "daemon/cluster/cluster.h"

int auth_key_load(const char *path, uint8_t key[AUTH_KEY_LEN])
{
	struct stat st;
	char *buf, *nl;
	size_t len;
	int ret = 0;

	buf = file_read_all(path, 4096, &len);
	if (!buf) {
		ret = -errno;
		log_err("cluster key %s: %s", path, strerror(errno));
		return ret;
	}
	if (stat(path, &st) == 0 && (st.st_mode & 077)) {
		log_err("cluster key %s: readable by others (mode %03o); chmod 600 it", path,
			st.st_mode & 0777);
		ret = -EPERM;
		goto out;
	}
	nl = strchr(buf, '\n');
	if (nl)
		*nl = '\0';
	if (hex_decode(buf, key, AUTH_KEY_LEN)) {
		log_err("cluster key %s: expected %d hex digits (make one with: "
			"head -c32 /dev/urandom | xxd -p -c64)",
			path, 2 * AUTH_KEY_LEN);
		ret = -EINVAL;
	}
out:
	explicit_bzero(buf, len);
	free(buf);
	return ret;
}

void auth_mac(const uint8_t key[AUTH_KEY_LEN], const void *a, size_t alen, const void *b,
	      size_t blen, uint8_t out[AUTH_MAC_LEN])
{
	unsigned char *msg = malloc(alen + blen + 1);
	unsigned int len = AUTH_MAC_LEN;

	if (!msg) {
		/* Never authenticate on allocation failure. */
		random_bytes(out, AUTH_MAC_LEN);
		return;
	}
	memcpy(msg, a, alen);
	if (blen)
		memcpy(msg + alen, b, blen);
	HMAC(EVP_sha256(), key, AUTH_KEY_LEN, msg, alen + blen, out, &len);
	free(msg);
}

void auth_session_key(const uint8_t key[AUTH_KEY_LEN], const uint8_t cn[AUTH_NONCE_LEN],
		      const uint8_t sn[AUTH_NONCE_LEN], uint8_t out[AUTH_KEY_LEN])
{
	uint8_t buf[8 + 2 * AUTH_NONCE_LEN];

	memcpy(buf, "session:", 8);
	memcpy(buf + 8, cn, AUTH_NONCE_LEN);
	memcpy(buf + 8 + AUTH_NONCE_LEN, sn, AUTH_NONCE_LEN);
	auth_mac(key, buf, sizeof(buf), NULL, 0, out);
}
