/*
 * The agent's side of the control protocol: enrollment (with the token kept
 * in the state directory, so a restart re-enrolls only if the controller
 * answers 401), then the long-poll loop carrying the agent's status. When the
 * controller is away: capped exponential backoff with full jitter.
 */
#ifndef AGENT_CTL_H
#define AGENT_CTL_H

#include "fjord.pb-c.h"

struct agent_loop;
struct agent_http;
struct agent_arena;
struct agent_config;
struct agent_ctl;

#define AGENT_TOKEN_MAX 256

struct agent_ctl_ops {
	/* Fills the live part of a PollRequest: interfaces, running run ids. */
	int (*status)(void *arg, Fjord__V1__PollRequest *req, struct agent_arena *a);
	/* A poll answer; resp is freed when this returns. */
	void (*commands)(void *arg, const Fjord__V1__PollResponse *resp);
	/* The agent holds a token now (after enrolling or loading it). */
	void (*enrolled)(void *arg);
};

int agent_ctl_create(struct agent_loop *loop, struct agent_http *http,
		     const struct agent_config *cfg, const struct agent_ctl_ops *ops, void *arg,
		     struct agent_ctl **out);
void agent_ctl_destroy(struct agent_ctl *c);
/* Loads the stored token (or enrolls) and starts polling. */
void agent_ctl_start(struct agent_ctl *c);
/* --once: polls without waiting and stops after the first good answer. */
void agent_ctl_set_once(struct agent_ctl *c, int once);
/* 1 once a --once poll has been answered. */
int agent_ctl_once_done(const struct agent_ctl *c);
/* NULL while not enrolled. */
const char *agent_ctl_token(const struct agent_ctl *c);
const char *agent_ctl_agent_id(const struct agent_ctl *c);
/* The controller's base URL without a trailing slash. */
const char *agent_ctl_base(const struct agent_ctl *c);
/* Another request got 401 with our token: forget it and enroll again. */
void agent_ctl_unauthorized(struct agent_ctl *c, const char *token);
/* Counters for tests and logs. */
unsigned int agent_ctl_enrollments(const struct agent_ctl *c);
unsigned int agent_ctl_polls(const struct agent_ctl *c);

/* The message of an Error body (protobuf or JSON), or a short summary. */
void agent_ctl_error_text(const uint8_t *body, size_t len, const char *content_type, char *buf,
			  size_t buflen);

#endif
