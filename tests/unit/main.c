/*
 * main.c - unit test runner (CUnit, Basic interface)
 *
 * The suites come from suites.gen.h, generated at build time by
 * scripts/gen-test-suites.sh from every function
 *     void test_<suite>__<case>(void)
 * in tests/unit/test_*.c, so a new test needs no registration.
 *
 *   run-unit            runs every suite
 *   run-unit SUITE...   runs only the named suites
 *
 * Prints CUnit's verbose report, then one line
 *     unit: N passed, N failed
 * which tests/run-all.sh adds to its totals.  Exits 1 when anything
 * failed, when CUnit reported an error, or when no test ran at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <CUnit/Basic.h>

#include "suites.gen.h"

static unsigned ran, failed, failures;

/* Each CUnit run resets its counters: add them up after every run. */
static void tally(void)
{
    ran += CU_get_number_of_tests_run();
    failed += CU_get_number_of_tests_failed();
    failures += CU_get_number_of_failures();
}

static int run_named(int argc, char **argv)
{
    int i, rc = 0;

    for (i = 1; i < argc; i++) {
        CU_pSuite suite = CU_get_suite(argv[i]);
        if (!suite) {
            fprintf(stderr, "run-unit: no suite '%s'\n", argv[i]);
            rc = 1;
            continue;
        }
        if (CU_basic_run_suite(suite) != CUE_SUCCESS)
            rc = 1;
        tally();
        CU_basic_show_failures(CU_get_failure_list());
        printf("\n");
    }
    return rc;
}

int main(int argc, char **argv)
{
    int rc = 0;

    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "run-unit: %s\n", CU_get_error_msg());
        return 1;
    }
    if (CU_register_suites(libxl__unit_suites) != CUE_SUCCESS) {
        fprintf(stderr, "run-unit: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);

    if (argc > 1) {
        rc = run_named(argc, argv);
    } else {
        if (CU_basic_run_tests() != CUE_SUCCESS)
            rc = 1;
        tally();
    }

    if (CU_get_error() != CUE_SUCCESS) {
        fprintf(stderr, "run-unit: %s\n", CU_get_error_msg());
        rc = 1;
    }
    if (failed || failures)
        rc = 1;
    if (!ran) {
        fprintf(stderr, "run-unit: no test ran\n");
        rc = 1;
    }

    printf("unit: %u passed, %u failed\n", ran - failed, failed);
    CU_cleanup_registry();
    return rc;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
