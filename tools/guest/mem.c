// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-agent: the memory dirtier.  It keeps a span of anonymous memory and
 * writes one word into MEMRATE/4096 pages a second of it, in order and
 * wrapping, so that a live migration sees a chosen RAM dirty rate (a rate
 * above the link's makes a migration that cannot converge).  Each page gets
 * a counter, not a constant, so that no page compresses or dedups to zero.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>

#include "agent.h"

#define AGENT_PAGE_BYTES 4096u

/* Set the rate (bytes/s, 0 stops) and span (bytes, 0 keeps or picks 64 MiB). */
int agent_mem_set(struct agent *a, uint64_t rate_bps, uint64_t span_bytes)
{
	void *p;

	if (span_bytes && span_bytes != a->mem_span_bytes) {
		struct sysinfo si;

		/* Never the guest's last memory: the OOM killer would take the agent. */
		if (!sysinfo(&si) && span_bytes > (uint64_t)si.freeram * si.mem_unit / 2)
			return -ENOMEM;
		span_bytes = (span_bytes + AGENT_PAGE_BYTES - 1) & ~(uint64_t)(AGENT_PAGE_BYTES - 1);
		p = mmap(NULL, span_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
		if (p == MAP_FAILED)
			return -errno;
		if (a->mem)
			munmap(a->mem, a->mem_span_bytes);
		a->mem = p;
		a->mem_span_bytes = span_bytes;
		a->mem_cursor = 0;
	}
	if (rate_bps && !a->mem)
		return agent_mem_set(a, 0, 64ull << 20) ?: agent_mem_set(a, rate_bps, 0);
	a->mem_rate_bps = rate_bps;
	a->mem_tokens = 0;
	a->mem_tokens_ns = agent_now_ns();
	return 0;
}

/* Dirty what the rate allows since the last call; ms until the next, or -1. */
int agent_mem_step(struct agent *a)
{
	uint64_t now = agent_now_ns(), pages = a->mem_span_bytes / AGENT_PAGE_BYTES;
	double cap;

	if (!a->mem_rate_bps || !pages)
		return -1;
	a->mem_tokens += (double)a->mem_rate_bps * (now - a->mem_tokens_ns) / 1e9;
	a->mem_tokens_ns = now;
	cap = a->mem_rate_bps / 10.0 + AGENT_PAGE_BYTES;
	if (a->mem_tokens > cap)
		a->mem_tokens = cap;
	while (a->mem_tokens >= AGENT_PAGE_BYTES) {
		uint64_t *w = (uint64_t *)(a->mem + a->mem_cursor * AGENT_PAGE_BYTES);

		*w = ++a->mem_dirtied_pages;
		a->mem_cursor = (a->mem_cursor + 1) % pages;
		a->mem_tokens -= AGENT_PAGE_BYTES;
	}
	return 10;
}
