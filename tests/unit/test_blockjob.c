/*
 * test_blockjob.c - the block job state machine: transition table, verb
 * table, QEMU status mapping, and names.
 */
#include <CUnit/CUnit.h>

#include "helpers.h"

#define S(x) LIBXL_BLOCKJOB_STATE_##x
#define V(x) LIBXL__BLOCKJOB_VERB_##x

void test_blockjob__lifecycle_edges(void)
{
    /* the paths a job really takes */
    CU_ASSERT(libxl__blockjob_transition_ok(S(NEW), S(RUNNING)));
    CU_ASSERT(libxl__blockjob_transition_ok(S(RUNNING), S(READY)));
    CU_ASSERT(libxl__blockjob_transition_ok(S(READY), S(CONCLUDED)));
    CU_ASSERT(libxl__blockjob_transition_ok(S(RUNNING), S(CONCLUDED)));
    CU_ASSERT(libxl__blockjob_transition_ok(S(RUNNING), S(ABORTING)));
    CU_ASSERT(libxl__blockjob_transition_ok(S(ABORTING), S(CONCLUDED)));
    CU_ASSERT(libxl__blockjob_transition_ok(S(CONCLUDED), S(COMPLETED)));
    CU_ASSERT(libxl__blockjob_transition_ok(S(CONCLUDED), S(FAILED)));
    CU_ASSERT(libxl__blockjob_transition_ok(S(CONCLUDED), S(CANCELLED)));
    /* staying put is always fine */
    CU_ASSERT(libxl__blockjob_transition_ok(S(READY), S(READY)));
}

void test_blockjob__forbidden_edges(void)
{
    int s;

    /* terminal states go nowhere */
    for (s = S(NEW); s <= S(CANCELLED); s++) {
        CU_ASSERT(!libxl__blockjob_transition_ok(S(COMPLETED), s) ||
                  s == S(COMPLETED));
        CU_ASSERT(!libxl__blockjob_transition_ok(S(FAILED), s) ||
                  s == S(FAILED));
        CU_ASSERT(!libxl__blockjob_transition_ok(S(CANCELLED), s) ||
                  s == S(CANCELLED));
    }
    /* no outcome without concluding, no way back to NEW */
    CU_ASSERT(!libxl__blockjob_transition_ok(S(RUNNING), S(COMPLETED)));
    CU_ASSERT(!libxl__blockjob_transition_ok(S(READY), S(CANCELLED)));
    CU_ASSERT(!libxl__blockjob_transition_ok(S(RUNNING), S(NEW)));
    CU_ASSERT(!libxl__blockjob_transition_ok(S(ABORTING), S(READY)));
    CU_ASSERT(!libxl__blockjob_transition_ok(S(CONCLUDED), S(RUNNING)));
    /* out of range */
    CU_ASSERT(!libxl__blockjob_transition_ok(S(NEW), 99));
    CU_ASSERT(!libxl__blockjob_transition_ok(-1, S(NEW)));
}

void test_blockjob__verbs(void)
{
    /* pivot only at READY: the race at READY is checked here */
    CU_ASSERT(libxl__blockjob_verb_ok(S(READY), V(COMPLETE)));
    CU_ASSERT(!libxl__blockjob_verb_ok(S(RUNNING), V(COMPLETE)));
    CU_ASSERT(!libxl__blockjob_verb_ok(S(CONCLUDED), V(COMPLETE)));
    /* cancel while it runs or waits, not once it is over */
    CU_ASSERT(libxl__blockjob_verb_ok(S(RUNNING), V(CANCEL)));
    CU_ASSERT(libxl__blockjob_verb_ok(S(READY), V(CANCEL)));
    CU_ASSERT(!libxl__blockjob_verb_ok(S(ABORTING), V(CANCEL)));
    CU_ASSERT(!libxl__blockjob_verb_ok(S(CONCLUDED), V(CANCEL)));
    CU_ASSERT(!libxl__blockjob_verb_ok(S(COMPLETED), V(CANCEL)));
    /* dismiss only a concluded job */
    CU_ASSERT(libxl__blockjob_verb_ok(S(CONCLUDED), V(DISMISS)));
    CU_ASSERT(!libxl__blockjob_verb_ok(S(RUNNING), V(DISMISS)));
    CU_ASSERT(libxl__blockjob_verb_ok(S(RUNNING), V(SET_SPEED)));
    CU_ASSERT(!libxl__blockjob_verb_ok(S(FAILED), V(SET_SPEED)));
    CU_ASSERT(!libxl__blockjob_verb_ok(S(READY), V(NUM)));
}

void test_blockjob__qemu_status(void)
{
    static const struct { const char *q; libxl_blockjob_state s; } ok[] = {
        { "created", S(NEW) }, { "running", S(RUNNING) },
        { "paused", S(RUNNING) }, { "ready", S(READY) },
        { "standby", S(RUNNING) }, { "waiting", S(RUNNING) },
        { "pending", S(RUNNING) }, { "aborting", S(ABORTING) },
        { "concluded", S(CONCLUDED) },
    };
    libxl_blockjob_state s;
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        s = 99;
        CU_ASSERT_EQUAL(libxl__blockjob_state_from_qemu(ok[i].q, &s), 0);
        CU_ASSERT_EQUAL(s, ok[i].s);
    }
    CU_ASSERT_EQUAL(libxl__blockjob_state_from_qemu("null", &s),
                    ERROR_INVAL);
    CU_ASSERT_EQUAL(libxl__blockjob_state_from_qemu(NULL, &s), ERROR_INVAL);
}

void test_blockjob__names(void)
{
    CU_ASSERT_STRING_EQUAL(libxl_blockjob_state_to_string(S(READY)),
                           "ready");
    CU_ASSERT_STRING_EQUAL(libxl_blockjob_state_to_string(99), "unknown");
    CU_ASSERT_STRING_EQUAL(
        libxl_blockjob_type_to_string(LIBXL_BLOCKJOB_TYPE_ACTIVE_COMMIT),
        "active-commit");
    CU_ASSERT_STRING_EQUAL(
        libxl_blockjob_type_to_string(LIBXL_BLOCKJOB_TYPE_STREAM), "stream");
}
