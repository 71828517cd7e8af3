/*
 * test_event_shapes.c - the shapes SIEM collectors ship, decoded to the
 * flat names without configuration: ECS (Winlogbeat 7/8, Elastic Agent),
 * Sentinel's WindowsEvent / SecurityEvent / Event / Syslog tables, and
 * raw event XML lines; and hostile input in each (broken, huge, deeply
 * nested XML or JSON inside a string, DTDs with entity expansion).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "event.h"
#include "event_fixture.h"

static void decode_bad(const char *line, const char *want) {
    const char *reason = NULL;
    cf_err_t rc = decode(line, &reason);
    if (rc == CF_OK) fail_msg("decoded: %.300s", line);
    assert_non_null(reason);
    if (strcmp(reason, want) != 0)
        fail_msg("reason \"%s\", want \"%s\" for %.200s", reason, want, line);
    assert_int_equal(ev.n_fields, 0);
}

/* Asserts the first leaf named `name` has text `want`. */
static void expect(const char *name, const char *want) {
    const struct cf_event_field *f = leaf(name, 0);
    if (f->value_len != strlen(want) || memcmp(f->value, want, f->value_len))
        fail_msg("%s = \"%.*s\", want \"%s\"", name, (int)f->value_len,
                 f->value, want);
    assert_int_equal(f->value[f->value_len], '\0');
    assert_int_equal(f->name_len, strlen(name));
    assert_int_equal(f->name_hash, cf_hash_name(name, strlen(name)));
}

static void expect_absent(const char *name) {
    if (cf_event_find(&ev, name, strlen(name), 0) >= 0)
        fail_msg("unexpected leaf %s", name);
}

/* 2022-05-13T08:54:05.123Z */
static const int64_t t_sample = 1652432045123;

static const char flat[] =
    "{\"Hostname\":\"WS5\",\"Channel\":\"Microsoft-Windows-Sysmon/"
    "Operational\",\"EventID\":1,\"SourceName\":\"Microsoft-Windows-Sysmon\","
    "\"UtcTime\":\"2022-05-13 08:54:05.123\",\"Image\":\"C:\\\\w\\\\cmd.exe\","
    "\"CommandLine\":\"cmd /c whoami\"}";

static void expect_sample(void) {
    expect("Channel", "Microsoft-Windows-Sysmon/Operational");
    expect("EventID", "1");
    expect("Image", "C:\\w\\cmd.exe");
    expect("CommandLine", "cmd /c whoami");
    assert_int_equal(ev.time_ms, t_sample);
}

static void test_flat_unchanged(void **state) {
    (void)state;
    decode_ok(flat);
    expect_sample();
    expect("Hostname", "WS5");
}

static void test_ecs_winlogbeat(void **state) {
    (void)state;
    /* Winlogbeat 8: event_id a string, provider and computer in winlog */
    decode_ok(
        "{\"@timestamp\":\"2022-05-13T08:54:05.999Z\",\"host\":{\"name\":"
        "\"ws5\"},\"event\":{\"code\":\"1\"},\"winlog\":{\"channel\":"
        "\"Microsoft-Windows-Sysmon/Operational\",\"event_id\":\"1\","
        "\"computer_name\":\"WS5\",\"provider_name\":\"Microsoft-Windows-"
        "Sysmon\",\"record_id\":42,\"event_data\":{\"UtcTime\":\"2022-05-13 "
        "08:54:05.123\",\"Image\":\"C:\\\\w\\\\cmd.exe\",\"CommandLine\":"
        "\"cmd /c whoami\"}}}");
    expect_sample();
    expect("Computer", "WS5");
    expect("host.name", "ws5");
    expect("Provider_Name", "Microsoft-Windows-Sysmon");
    expect("winlog.record_id", "42");
    expect("event.code", "1");
    expect_absent("winlog.event_data.Image");
    expect_absent("winlog.channel");
    /* Winlogbeat 7: event_id a number, user_data; time from @timestamp */
    decode_ok("{\"@timestamp\":\"2022-05-13T08:54:05.123Z\",\"winlog\":{"
              "\"channel\":\"Security\",\"event_id\":1102,\"user_data\":{"
              "\"xml_name\":\"LogFileCleared\",\"SubjectUserName\":\"bob\"}},"
              "\"host\":{\"name\":\"ws5\"}}");
    expect("EventID", "1102");
    assert_int_equal(ev.fields[cf_event_find(&ev, "EventID", 7, 0)].type,
                     CF_VALUE_NUMBER);
    expect("SubjectUserName", "bob");
    expect("Channel", "Security");
    assert_int_equal(ev.time_ms, t_sample);
    /* not a winlog object: a plain dotted leaf */
    decode_ok("{\"winlog\":\"x\"}");
    expect("winlog", "x");
}

static void test_sentinel_windowsevent(void **state) {
    (void)state;
    decode_ok(
        "{\"TimeGenerated\":\"2022-05-13T08:54:06.347Z\",\"Provider\":"
        "\"Microsoft-Windows-Sysmon\",\"Channel\":\"Microsoft-Windows-Sysmon/"
        "Operational\",\"Computer\":\"WS5\",\"EventData\":\"{\\\"UtcTime\\\":"
        "\\\"2022-05-13 08:54:05.123\\\",\\\"Image\\\":\\\"C:\\\\\\\\w\\\\\\\\"
        "cmd.exe\\\",\\\"CommandLine\\\":\\\"cmd /c whoami\\\"}\",\"EventID\":"
        "1,\"Type\":\"WindowsEvent\"}");
    expect_sample();
    expect("Computer", "WS5");
    expect_absent("EventData");
    /* without UtcTime the time is TimeGenerated */
    decode_ok("{\"TimeGenerated\":\"2022-05-13T08:54:05.123Z\",\"Channel\":"
              "\"Security\",\"EventData\":\"{\\\"a\\\":{\\\"b\\\":[1,2]}}\"}");
    assert_int_equal(ev.time_ms, t_sample);
    assert_int_equal(count("a.b"), 2);
    /* EventData that is neither JSON nor XML stays a string */
    decode_ok("{\"EventData\":\"plain text\"}");
    expect("EventData", "plain text");
}

static void test_sentinel_securityevent(void **state) {
    (void)state;
    /* as in the OTRF Log4Shell recording: indentation, CRLF, namespace */
    decode_ok(
        "{\"TimeGenerated\":\"2022-05-13T08:54:05.123Z\",\"Computer\":\"WS5\","
        "\"EventSourceName\":\"Microsoft-Windows-Security-Auditing\","
        "\"Channel\":\"Security\",\"EventData\":\"\\u003cEventData xmlns="
        "\\\"http://schemas.microsoft.com/win/2004/08/events/event\\\"\\u003e"
        "\\r\\n  \\u003cData Name=\\\"NewProcessName\\\"\\u003eC:\\\\w\\\\"
        "cmd.exe\\u003c/Data\\u003e\\r\\n  \\u003cData Name=\\\"CommandLine\\\""
        "\\u003ecmd /c \\\"a &amp; b\\\" &lt;x&gt;\\u003c/Data\\u003e\\r\\n  "
        "\\u003cData Name=\\\"Empty\\\"/\\u003e\\r\\n  \\u003cData Name=\\\""
        "Spaces\\\"\\u003e  x \\u003c/Data\\u003e\\r\\n\\u003c/EventData"
        "\\u003e\",\"EventID\":4688,\"Type\":\"SecurityEvent\"}");
    expect("NewProcessName", "C:\\w\\cmd.exe");
    expect("CommandLine", "cmd /c \"a & b\" <x>");
    expect("Empty", "");
    expect("Spaces", "  x ");
    expect("EventID", "4688");
    expect("Channel", "Security");
    expect_absent("EventData");
    expect_absent("xmlns");
    expect_absent("Data");
    assert_int_equal(ev.time_ms, t_sample);
    /* the Event table: EventLog / Source, EventData inside DataItem */
    decode_ok("{\"TimeGenerated\":\"2022-05-13T08:54:05.123Z\",\"Source\":"
              "\"Service Control Manager\",\"EventLog\":\"System\","
              "\"EventID\":7045,\"EventData\":\"<DataItem type=\\\"System."
              "XmlData\\\" time=\\\"x\\\"><EventData xmlns=\\\"http://schemas."
              "microsoft.com/win/2004/08/events/event\\\"><Data Name=\\\""
              "ServiceName\\\">evil</Data><Data>unnamed</Data><Binary>00"
              "</Binary></EventData></DataItem>\",\"Type\":\"Event\"}");
    expect("Channel", "System");
    expect("Provider_Name", "Service Control Manager");
    expect("ServiceName", "evil");
    expect("Data", "unnamed");
    expect("Binary", "00");
    expect_absent("type");
    expect_absent("EventLog");
}

static const char sysmon_linux_xml[] =
    "<Event><System><Provider Name=\"Linux-Sysmon\" Guid=\"{ff032593}\"/>"
    "<EventID>1</EventID><TimeCreated SystemTime=\"2022-05-11T18:10:20."
    "399931000Z\"/><Correlation/><Execution ProcessID=\"1590\" ThreadID="
    "\"1590\"/><Channel>Linux-Sysmon/Operational</Channel><Computer>UBUNTU5"
    "</Computer><Security UserId=\"0\"/></System><EventData><Data Name=\""
    "UtcTime\">2022-05-11 18:10:20.395</Data><Data Name=\"Image\">/usr/bin/"
    "bash</Data><Data Name=\"CommandLine\">bash -c id</Data></EventData>"
    "</Event>";

static void expect_sysmon_linux(void) {
    expect("Provider_Name", "Linux-Sysmon");
    expect("Provider_Guid", "{ff032593}");
    expect("EventID", "1");
    expect("TimeCreated_SystemTime", "2022-05-11T18:10:20.399931000Z");
    expect("Execution_ProcessID", "1590");
    expect("Channel", "Linux-Sysmon/Operational");
    expect("Computer", "UBUNTU5");
    expect("Security_UserId", "0");
    expect("Image", "/usr/bin/bash");
    expect("CommandLine", "bash -c id");
    expect_absent("Provider");
    expect_absent("Execution");
    assert_int_equal(ev.time_ms, 1652292620395);
}

static void test_sentinel_syslog(void **state) {
    (void)state;
    struct cf_buf line = CF_BUF_INIT;
    cf_buf_puts(&line, "{\"Computer\":\"UBUNTU5\",\"EventTime\":\"2022-05-11T"
                       "18:10:20Z\",\"Facility\":\"user\",\"SyslogMessage\":");
    cf_buf_json_string(&line, sysmon_linux_xml, strlen(sysmon_linux_xml));
    cf_buf_puts(&line, ",\"Type\":\"Syslog\"}");
    decode_ok(line.data);
    expect_sysmon_linux();
    expect("Facility", "user");
    expect_absent("SyslogMessage");
    cf_buf_free(&line);

    /* AUOMS as the OTRF recording has it: proctitle with spaces and '=' */
    decode_ok("{\"Computer\":\"UBUNTU5\",\"EventTime\":\"2022-05-11T18:10:"
              "21Z\",\"Facility\":\"user\",\"SyslogMessage\":\"type=AUOMS_"
              "EXECVE audit(1652292621.986:84138): pid=17790 comm=\\\"http-"
              "nio 8080\\\" exe=\\\"/usr/bin/java\\\" key=auoms,delete "
              "path_name=[\\\"/bin/sh\\\"] proctitle=/usr/bin/java -Dx.y=z "
              "-jar a.jar redactors= containerid=\"}");
    expect("type", "AUOMS_EXECVE");
    expect("pid", "17790");
    expect("comm", "http-nio 8080");
    expect("exe", "/usr/bin/java");
    expect("key", "auoms,delete");
    expect("path_name", "[\"/bin/sh\"]");
    expect("proctitle", "/usr/bin/java -Dx.y=z -jar a.jar");
    expect("redactors", "");
    expect("containerid", "");
    expect_absent("audit");
    /* kept for keyword rules */
    assert_int_equal(count("SyslogMessage"), 1);
    assert_int_equal(ev.time_ms, 1652292621000);
    /* plain auditd */
    decode_ok("{\"SyslogMessage\":\"type=EXECVE msg=audit(1652292621.986:1): "
              "argc=2 a0=\\\"bash\\\" a1=\\\"-i\\\"\"}");
    expect("type", "EXECVE");
    expect("a0", "bash");
    expect("a1", "-i");
    expect_absent("msg");
    /* Sysmon for Linux's escapes without semicolons, as in the OTRF
     * Log4Shell recording; an undefined entity is still refused */
    decode_ok("<Event><EventData><Data Name=\"Image\">&lt unknown process&gt "
              "</Data><Data Name=\"CommandLine\">sh -c wql &quot SELECT a "
              "&amp b&lt</Data><Data Name=\"Ok\">&lt;x&gt;&#38;lt</Data>"
              "</EventData></Event>");
    expect("Image", "<unknown process>");
    expect("CommandLine", "sh -c wql \"SELECT a &b<");
    expect("Ok", "<x>&lt");
    decode_bad("<Event>&ltx</Event>", CF_DEFECT_INVALID_XML);
    /* a message cut by syslog's size limit (the OTRF Log4Shell recording
     * has one, the exploit's own process creation): what arrived is the
     * event, marked; a raw line cut short is broken */
    assert_false(ev.cut_short);
    decode_ok("{\"SyslogMessage\":\"<Event><System><EventID>1</EventID>"
              "</System><EventData><Data Name='Image'>/bin/bash</Data><Data "
              "Name='ParentCommandLine'>java -D\"}");
    assert_true(ev.cut_short);
    expect("EventID", "1");
    expect("Image", "/bin/bash");
    expect("ParentCommandLine", "java -D");
    decode_ok("{\"SyslogMessage\":\"<Event><System><EventID>1</EventID>"
              "</System><EventData><Data Name='Image'>/bin/bash</Data><Da\"}");
    assert_true(ev.cut_short);
    expect("Image", "/bin/bash");
    decode_ok(flat);
    assert_false(ev.cut_short);
    decode_bad("<Event><System><EventID>1</EventID>", CF_DEFECT_INVALID_XML);
    /* other syslog text stays as it is, even when it starts like a tag */
    decode_ok("{\"SyslogMessage\":\"session opened for user root\"}");
    expect("SyslogMessage", "session opened for user root");
    decode_ok("{\"SyslogMessage\":\"<Eventually> broken <tag\"}");
    expect("SyslogMessage", "<Eventually> broken <tag");
    decode_ok("{\"EventData\":\"<b>bold</b>\"}");
    expect("EventData", "<b>bold</b>");
}

static void test_raw_xml_line(void **state) {
    (void)state;
    const char *json;
    size_t len;
    struct cf_buf want = CF_BUF_INIT, line = CF_BUF_INIT;
    cf_buf_puts(&line, "<Event xmlns='http://schemas.microsoft.com/win/2004/"
                       "08/events/event'><System><Provider Name='Microsoft-"
                       "Windows-Sysmon'/><EventID Qualifiers='0'>1</EventID>"
                       "<TimeCreated SystemTime='2022-05-13T08:54:05.999Z'/>"
                       "<Channel>Microsoft-Windows-Sysmon/Operational</Channel>"
                       "<Computer>WS5</Computer></System>\n  <EventData>"
                       "<Data Name='UtcTime'>2022-05-13 08:54:05.123</Data>"
                       "<Data Name='Image'>C:\\w\\cmd.exe</Data><Data Name="
                       "'CommandLine'>cmd /c whoami</Data></EventData>"
                       "<RenderingInfo Culture='en-US'><Message>Process "
                       "Create</Message></RenderingInfo></Event>");
    cf_buf_puts(&line, "\r\n");
    decode_ok(line.data);
    expect_sample();
    expect("Provider_Name", "Microsoft-Windows-Sysmon");
    expect("EventID_Qualifiers", "0");
    expect("Computer", "WS5");
    expect("RenderingInfo.Message", "Process Create");
    expect("RenderingInfo_Culture", "en-US");
    /* what an alert embeds: the line's bytes as one JSON string */
    json = cf_event_json(&ev, &len);
    cf_buf_json_string(&want, line.data, line.len - 2);
    assert_int_equal(len, want.len);
    assert_memory_equal(json, want.data, len);
    /* the next JSON event is embedded as itself again */
    decode_ok(flat);
    json = cf_event_json(&ev, &len);
    assert_int_equal(len, strlen(flat));
    /* leading blanks, UserData, XML declaration */
    decode_ok("  <?xml version='1.0' encoding='utf-16'?><Event><System>"
              "<EventID>1102</EventID><Channel>Security</Channel></System>"
              "<UserData><LogFileCleared xmlns='x'><SubjectUserName>bob"
              "</SubjectUserName><Deep><A>1</A></Deep></LogFileCleared>"
              "</UserData></Event>");
    expect("SubjectUserName", "bob");
    expect("Deep.A", "1");
    expect("EventID", "1102");
    expect_absent("xmlns");
    cf_buf_free(&want);
    cf_buf_free(&line);
}

static void test_hostile_xml(void **state) {
    (void)state;
    struct cf_buf b = CF_BUF_INIT;
    /* not well-formed, as a line and inside a string */
    decode_bad("<Event><System></Event>", CF_DEFECT_INVALID_XML);
    decode_bad("<Event>", CF_DEFECT_INVALID_XML);
    decode_bad("<", CF_DEFECT_INVALID_XML);
    decode_bad("<Event/><Event/>", CF_DEFECT_INVALID_XML);
    decode_bad("<Event>&undefined;</Event>", CF_DEFECT_INVALID_XML);
    decode_bad("<Event>\xff\xfe</Event>", CF_DEFECT_INVALID_XML);
    decode_bad("{\"EventData\":\"<EventData><Data Name=\\\"a\\\">x</Dat>"
               "</EventData>\"}",
               CF_DEFECT_INVALID_XML);
    decode_bad("{\"SyslogMessage\":\"<Event><System></Event>\"}",
               CF_DEFECT_INVALID_XML);
    /* billion laughs and external entities: the DTD itself is refused */
    decode_bad("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
               "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
               "<!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">]>"
               "<Event><EventData><Data Name=\"a\">&lol2;</Data></EventData>"
               "</Event>",
               CF_DEFECT_XML_DTD);
    decode_bad("<!DOCTYPE e [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
               "<Event>&x;</Event>",
               CF_DEFECT_XML_DTD);
    decode_bad("<!DOCTYPE e SYSTEM \"http://x/e.dtd\"><Event/>",
               CF_DEFECT_XML_DTD);
    /* XML that is not an event: a line of a web page, say */
    decode_bad("    <meta content=\"text/html\"/>", CF_DEFECT_XML_NOT_EVENT);
    decode_bad("<html xmlns=\"http://www.w3.org/1999/xhtml\"/>",
               CF_DEFECT_XML_NOT_EVENT);
    /* nesting past max_depth */
    cf_buf_puts(&b, "<Event>");
    for (int i = 0; i < 100; i++) cf_buf_puts(&b, "<a>");
    for (int i = 0; i < 100; i++) cf_buf_puts(&b, "</a>");
    cf_buf_puts(&b, "</Event>");
    decode_bad(b.data, CF_DEFECT_TOO_DEEP);
    /* huge but within the line limit: a 600 KB value and 20000 leaves */
    cf_buf_reset(&b);
    cf_buf_puts(&b, "<Event><EventData><Data Name=\"Big\">");
    for (int i = 0; i < 600000; i++) cf_buf_putc(&b, 'x');
    cf_buf_puts(&b, "</Data>");
    for (int i = 0; i < 20000; i++) cf_buf_puts(&b, "<Data>&amp;</Data>");
    cf_buf_puts(&b, "</EventData></Event>");
    decode_ok(b.data);
    assert_int_equal(ev.fields[cf_event_find(&ev, "Big", 3, 0)].value_len,
                     600000);
    assert_int_equal(count("Data"), 20000);
    expect("Data", "&");
    /* past the line limit */
    for (int i = 0; i < 500000; i++) cf_buf_puts(&b, "  ");
    decode_bad(b.data, CF_DEFECT_LINE_TOO_LONG);
    /* character references expand by at most their own length */
    decode_ok("<Event><EventData><Data Name=\"c\">&#x10FFFF;&#65;</Data>"
              "</EventData></Event>");
    expect("c", "\xf4\x8f\xbf\xbf"
                "A");
    /* a long element name repeated under a short one: names are not
     * bounded by the line, and must still fit */
    cf_buf_reset(&b);
    cf_buf_puts(&b, "<Event><");
    for (int i = 0; i < 5000; i++) cf_buf_putc(&b, 'n');
    cf_buf_puts(&b, ">");
    for (int i = 0; i < 1000; i++) cf_buf_puts(&b, "<c/>");
    cf_buf_puts(&b, "</");
    for (int i = 0; i < 5000; i++) cf_buf_putc(&b, 'n');
    cf_buf_puts(&b, "></Event>");
    decode_ok(b.data);
    assert_int_equal(ev.n_fields, 1000);
    assert_int_equal(ev.fields[999].name_len, 5002);
    cf_buf_free(&b);
}

static void test_hostile_embedded_json(void **state) {
    (void)state;
    struct cf_buf b = CF_BUF_INIT;
    decode_bad("{\"EventData\":\"{\\\"a\\\":\"}",
               CF_DEFECT_INVALID_EMBEDDED_JSON);
    decode_bad("{\"EventData\":\"{\\\"a\\\":1}}\"}",
               CF_DEFECT_INVALID_EMBEDDED_JSON);
    decode_bad("{\"EventData\":\"{\\\"a\\\":\\\"\\\\ud800\\\"}\"}",
               CF_DEFECT_INVALID_EMBEDDED_JSON);
    /* nesting inside the string counts against max_depth too */
    cf_buf_puts(&b, "{\"EventData\":\"");
    for (int i = 0; i < 100; i++) cf_buf_puts(&b, "{\\\"a\\\":");
    cf_buf_puts(&b, "1");
    for (int i = 0; i < 100; i++) cf_buf_putc(&b, '}');
    cf_buf_puts(&b, "\"}");
    decode_bad(b.data, CF_DEFECT_TOO_DEEP);
    /* only one embedded document per event: a second stays a string */
    decode_ok("{\"EventData\":\"{\\\"a\\\":1}\",\"SyslogMessage\":\"<x/>\"}");
    expect("a", "1");
    expect("SyslogMessage", "<x/>");
    cf_buf_free(&b);
}

/* The decoder's buffers are reused: a short event after a big XML one
 * and the other way round leave no stale leaves or values. */
static void test_reuse(void **state) {
    (void)state;
    for (int round = 0; round < 3; round++) {
        decode_ok(sysmon_linux_xml);
        expect_sysmon_linux();
        decode_ok(flat);
        expect_sample();
        expect_absent("Provider_Guid");
        decode_ok("{\"EventData\":\"{\\\"Image\\\":\\\"x\\\"}\"}");
        expect("Image", "x");
        assert_int_equal(ev.n_fields, 1);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat_unchanged),
        cmocka_unit_test(test_ecs_winlogbeat),
        cmocka_unit_test(test_sentinel_windowsevent),
        cmocka_unit_test(test_sentinel_securityevent),
        cmocka_unit_test(test_sentinel_syslog),
        cmocka_unit_test(test_raw_xml_line),
        cmocka_unit_test(test_hostile_xml),
        cmocka_unit_test(test_hostile_embedded_json),
        cmocka_unit_test(test_reuse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
