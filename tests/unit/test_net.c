// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for net/sock.c: address parsing and message framing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "net/net.h"

static void test_addr_parse(void **state)
{
	struct net_addr a;
	char buf[300];

	assert_int_equal(net_addr_parse("198.18.0.2:7000", 1, &a), 0);
	assert_string_equal(a.host, "198.18.0.2");
	assert_int_equal(a.port, 7000);
	assert_int_equal(net_addr_parse("h2", 4710, &a), 0);
	assert_string_equal(a.host, "h2");
	assert_int_equal(a.port, 4710);
	assert_int_equal(net_addr_parse("[::1]:99", 1, &a), 0);
	assert_string_equal(a.host, "::1");
	assert_int_equal(a.port, 99);
	assert_string_equal(net_addr_str(&a, buf, sizeof(buf)), "[::1]:99");
	assert_int_equal(net_addr_parse("::1", 5, &a), 0);
	assert_string_equal(a.host, "::1");
	assert_int_equal(a.port, 5);
	assert_int_equal(net_addr_parse(":8080", 1, &a), 0);
	assert_string_equal(a.host, "");
	assert_int_equal(a.port, 8080);
	assert_int_equal(net_addr_parse("h:0", 1, &a), -EINVAL);
	assert_int_equal(net_addr_parse("h:70000", 1, &a), -EINVAL);
	assert_int_equal(net_addr_parse("[::1", 1, &a), -EINVAL);
}

static void test_msg(void **state)
{
	int sv[2];
	char *buf;
	uint32_t len, big = htonl(NET_MSG_MAX + 1);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(net_msg_send(sv[0], "hello", 5), 0);
	assert_int_equal(net_msg_recv(sv[1], 100, &buf, &len), 0);
	assert_int_equal(len, 5);
	assert_string_equal(buf, "hello");
	free(buf);
	/* An oversized length is refused before any payload is read. */
	assert_int_equal(write(sv[0], &big, 4), 4);
	assert_int_equal(net_msg_recv(sv[1], NET_MSG_MAX, &buf, &len), -EMSGSIZE);
	assert_null(buf);
	close(sv[0]);
	/* EOF mid-message. */
	assert_int_equal(net_msg_recv(sv[1], 100, &buf, &len), -EPIPE);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_parse),
		cmocka_unit_test(test_msg),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
