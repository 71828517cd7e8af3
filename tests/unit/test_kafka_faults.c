/*
 * test_kafka_faults.c - the Kafka input under faults, against the mock
 * cluster with kcat (kafka_cluster.h): every broker down and back, a
 * pause longer than max.poll.interval.ms, a second consumer joining the
 * group.  Skipped (77) when kcat or the mock-cluster program is missing.
 */
#include "kafka_cluster.h"

/* Every broker goes down and comes back: reads pause, a commit told
 * during the outage is committed once a coordinator is back, reading
 * resumes with nothing lost, and nothing past what commit() was told is
 * committed. */
static void test_brokers_down_and_up(void **state) {
    (void)state;
    struct cluster c;
    static struct run r, again;
    cluster_start(&c, 3, "d:2");
    for (int p = 0; p < 2; p++) produce(&c, "d", p, 0, 5);
    struct cf_input *in = open_input(c.boot, "d", "group=g3", NULL);
    run_init(&r);
    read_some(in, &r, 10, 20000);
    assert_int_equal(r.n, 10);

    for (int b = 1; b <= 3; b++) {
        char cmd[16];
        snprintf(cmd, sizeof cmd, "down %d", b);
        cluster_cmd(&c, cmd);
    }
    commit_read(in, &r); /* offsets 4 + 1, owed while no one listens */
    read_some(in, &r, 11, 2000);
    assert_int_equal(r.n, 10);
    for (int b = 1; b <= 3; b++) {
        char cmd[16];
        snprintf(cmd, sizeof cmd, "up %d", b);
        cluster_cmd(&c, cmd);
    }
    for (int p = 0; p < 2; p++) produce(&c, "d", p, 5, 5);
    read_some(in, &r, 20, 20000);
    assert_int_equal(r.n, 20); /* resumed at 5, in order (read_some) */
    check_payloads(&r, 0);
    cf_input_close(in); /* offsets 5..9 read, never committed */

    in = open_input(c.boot, "d", "group=g3&stop_at_end=true", NULL);
    run_init(&again);
    read_some(in, &again, 0, 20000);
    assert_true(again.eof);
    assert_int_equal(first_offset(&again, 0), 5);
    assert_int_equal(first_offset(&again, 1), 5);
    assert_int_equal(again.n, 10);
    cf_input_close(in);
    cluster_stop(&c);
}

/* wait() keeps the group session: waiting longer than
 * max.poll.interval.ms costs no rebalance (a revoke would have asked for
 * a checkpoint); what arrives meanwhile comes out afterwards, whole and
 * in order. */
static void test_wait_keeps_session(void **state) {
    (void)state;
    struct cluster c;
    static struct run r;
    cluster_start(&c, 1, "w:2");
    for (int p = 0; p < 2; p++) produce(&c, "w", p, 0, 5);
    json_t *opts =
        json_pack("{s:{s:i}}", "rdkafka", "max.poll.interval.ms", 4000);
    struct cf_input *in =
        open_input(c.boot, "w", "group=g4&stop_at_end=true", opts);
    json_decref(opts);
    run_init(&r);
    r.in = in;
    in->checkpoint = on_checkpoint;
    in->engine = &r;
    read_some(in, &r, 6, 20000);
    assert_int_equal(r.n, 6);
    for (int p = 0; p < 2; p++) produce(&c, "w", p, 5, 5);
    for (int i = 0; i < 12; i++) in->ops->wait(in, 500);
    assert_int_equal(r.checkpoints, 0);
    read_some(in, &r, 0, 20000);
    assert_true(r.eof);
    assert_int_equal(r.n, 20);
    check_payloads(&r, 0);
    assert_int_equal(r.checkpoints, 0);
    cf_input_close(in);
    assert_int_equal(r.checkpoints, 0); /* close asks for none */
    cluster_stop(&c);
}

/* A second consumer joins the group: the first is asked for a
 * checkpoint before it gives partitions up; the second starts each
 * partition it takes after what was committed there, never before it
 * (nothing committed is read twice) and never after what the first had
 * read when it gave the partition up (nothing is skipped).  (The mock
 * refuses commits while the group rebalances, which Kafka accepts, so
 * the commit made inside the revoke is not relied on here.) */
static void test_rebalance_checkpoints(void **state) {
    (void)state;
    struct cluster c;
    static struct run a, b;
    cluster_start(&c, 1, "g:2");
    for (int p = 0; p < 2; p++) produce(&c, "g", p, 0, 5);
    struct cf_input *ia = open_input(c.boot, "g", "group=g5", NULL);
    run_init(&a);
    a.in = ia;
    ia->checkpoint = on_checkpoint;
    ia->engine = &a;
    read_some(ia, &a, 10, 20000);
    assert_int_equal(a.n, 10);
    commit_read(ia, &a);         /* a checkpoint: offsets 0..4 */
    read_some(ia, &a, 11, 1000); /* sends the commit */

    struct cf_input *ib = open_input(c.boot, "g", "group=g5", NULL);
    run_init(&b);
    for (int p = 0; p < 2; p++) produce(&c, "g", p, 5, 5);
    /* both poll, as two engines would, until each has had a share */
    int64_t deadline = now_ms() + 25000;
    while ((a.checkpoints == 0 || b.n == 0 || a.n + b.n < 20) &&
           now_ms() < deadline) {
        read_some(ia, &a, a.n + 1, 50);
        read_some(ib, &b, b.n + 1, 50);
    }
    assert_true(a.checkpoints >= 1);
    assert_true(b.n > 0);
    for (int p = 0; p < 2; p++) {
        int64_t first_b = first_offset(&b, p);
        if (first_b < 0) continue;
        assert_true(first_b >= 5);
        assert_true(first_b <= a.at_checkpoint[p] + 1);
        /* between them every message was read */
        assert_int_equal(b.last[p], 9);
    }
    cf_input_close(ia);
    cf_input_close(ib);
    cluster_stop(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_brokers_down_and_up, kafka_teardown),
        cmocka_unit_test_teardown(test_wait_keeps_session, kafka_teardown),
        cmocka_unit_test_teardown(test_rebalance_checkpoints, kafka_teardown),
    };
    return kafka_run_tests("test_kafka_faults", tests,
                           sizeof tests / sizeof *tests);
}
