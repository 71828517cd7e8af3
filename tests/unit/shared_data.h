/*
 * shared_data.h - what a unit test does when the shared datasets
 * (SigmaHQ rules, OTRF recordings, the Sigma specification, ATT&CK; the
 * `shared/` folder beside the clone) are not there.
 *
 * CF_SHARED_DIR names that folder.  CTest sets it from the CMake cache
 * variable of the same name unless the environment already has it
 * (tests/ci/run_test.sh).  A test that needs the data and cannot find it
 * skips, except under CF_REQUIRE_SHARED=1 (CI sets it): there the skip is
 * a failure, since a run that skipped its dataset checks proves nothing.
 *
 * Header only, for tests/unit/test_*.c.
 */
#ifndef CF_TEST_SHARED_DATA_H
#define CF_TEST_SHARED_DATA_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline bool cf_test_shared_required(void) {
    const char *v = getenv("CF_REQUIRE_SHARED");
    return v && strcmp(v, "1") == 0;
}

/*
 * Call where the test would skip because `what` (a path, or a sentence)
 * is missing.  Prints why, naming CF_SHARED_DIR, and returns the exit
 * status the test should end with: 77 (skipped) normally, 1 (failed)
 * under CF_REQUIRE_SHARED=1.  Inside a cmocka test:
 *     if (cf_test_shared_missing(path) == 77) skip(); else fail();
 */
static inline int cf_test_shared_missing(const char *what) {
    const char *dir = getenv("CF_SHARED_DIR");
    bool required = cf_test_shared_required();
    printf("%s: shared data missing: %s (CF_SHARED_DIR=%s; set CF_SHARED_DIR "
           "to the shared/ folder holding data/)%s\n",
           required ? "FAIL" : "SKIP", what, dir && *dir ? dir : "(unset)",
           required ? "; CF_REQUIRE_SHARED=1 makes this a failure" : "");
    fflush(stdout);
    return required ? 1 : 77;
}

#endif
