// POST /api/v1/queues/{queue}/ingest against the real binary and a real PostgreSQL: NDJSON and
// CSV end to end, partition and time fields, strict mode, idempotent repeats, the errors, and
// the `sluice ingest` command.
#include <fstream>

#include <gtest/gtest.h>

#include "ingest_fixture.hpp"

namespace sluice::test {
namespace {

using json = nlohmann::json;

class ingest_api : public ingest_fixture {};

constexpr const char* ndjson = "application/x-ndjson";

TEST_F(ingest_api, ndjson_rows_are_stored_with_partition_and_event_time) {
  sluice_process s(env());
  wait_ready(s);
  const std::string body =
      "{\"dev\":\"d-1\",\"ts\":\"2026-12-02T17:00:00.250Z\",\"v\": [1, 2.50]}\n"
      "{\"dev\":\"d-2\",\"ts\":\"2026-12-02T17:00:01Z\",\"v\":null}\r\n"
      "\n"
      "{\"dev\":\"d-1\"}\n"
      "not json\n"
      "{\"dev\":17,\"ts\":\"2026-12-02T17:00:02+01:00\"}";
  const auto res =
      upload(s, "/api/v1/queues/telemetry/ingest?partition_field=dev&time_field=ts", ndjson, body);
  ASSERT_EQ(res.status, 200) << res.body;
  const auto out = res.json();
  EXPECT_EQ(out["accepted"], 3);
  EXPECT_EQ(out["duplicates"], 0);
  EXPECT_EQ(out["rejectedCount"], 2);
  EXPECT_EQ(out["durableThroughLine"], 6);
  ASSERT_EQ(out["rejected"].size(), 2u);
  EXPECT_EQ(out["rejected"][0]["line"], 4);
  EXPECT_EQ(out["rejected"][0]["message"], "time field 'ts' is missing");
  EXPECT_EQ(out["rejected"][1]["line"], 5);

  pg_session pg(db_.url());
  const auto rows = pg.query(
      "SELECT queue, partition, to_char(event_time AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD HH24:MI:SS.MS'), payload::text, transaction_id FROM sluice_messages ORDER BY "
      "id");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(*rows[0][0], "telemetry");
  EXPECT_EQ(*rows[0][1], "d-1");
  EXPECT_EQ(*rows[0][2], "2026-12-02 17:00:00.250");
  EXPECT_EQ(*rows[0][3], "{\"dev\":\"d-1\",\"ts\":\"2026-12-02T17:00:00.250Z\",\"v\": [1, 2.50]}")
      << "the line is stored as sent";
  EXPECT_FALSE(rows[0][4]);
  EXPECT_EQ(*rows[1][1], "d-2");
  EXPECT_EQ(*rows[2][1], "17");
  EXPECT_EQ(*rows[2][2], "2026-12-02 16:00:02.000");
}

TEST_F(ingest_api, epoch_times) {
  sluice_process s(env());
  wait_ready(s);
  auto res = upload(s, "/api/v1/queues/q/ingest?time_field=t&time_format=epoch_s", ndjson,
                    "{\"t\":1796230800.25}\n{\"t\":\"1796230801\"}\n");
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(res.json()["accepted"], 2);
  res = upload(s, "/api/v1/queues/q/ingest?time_field=t&time_format=epoch_ms", "text/csv",
               "t,v\n1796230802500,x\n");
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(res.json()["accepted"], 1);
  pg_session pg(db_.url());
  const auto rows = pg.query(
      "SELECT extract(epoch FROM event_time)::numeric(20,3)::text FROM sluice_messages ORDER BY "
      "id");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(*rows[0][0], "1796230800.250");
  EXPECT_EQ(*rows[1][0], "1796230801.000");
  EXPECT_EQ(*rows[2][0], "1796230802.500");
}

TEST_F(ingest_api, csv_quoting_edge_cases_end_to_end) {
  sluice_process s(env());
  wait_ready(s);
  // BOM, CRLF, quoted commas, "" escapes, line ends inside quotes (LF and CRLF), numbers in and
  // out of canonical form, empty fields quoted and not, a short row, a garbage quote.
  const std::string body =
      "\xEF\xBB\xBF"
      "id,name,amount,note\r\n"
      "1,\"Lovelace, Ada\",12.50,\"she said \"\"hi\"\"\"\r\n"
      "2,\"two\nlines\",0001,\"crlf\r\ninside\"\r\n"
      "3,,\"7\",\"\"\r\n"
      "4,true,-1e3,\r\n"
      "\r\n"
      "5,short\r\n"
      "6,\"x\"y,1,2\r\n"
      "7,\xc3\xa9t\xc3\xa9,1.0,last";
  const auto res = upload(s, "/api/v1/queues/csvq/ingest?partition_field=id", "text/csv", body);
  ASSERT_EQ(res.status, 200) << res.body;
  const auto out = res.json();
  EXPECT_EQ(out["accepted"], 5);
  ASSERT_EQ(out["rejected"].size(), 2u);
  EXPECT_EQ(out["rejected"][0]["line"], 9);  // record 2 spans lines 3 to 5
  EXPECT_EQ(out["rejected"][0]["message"], "expected 4 fields, got 2");
  EXPECT_EQ(out["rejected"][1]["line"], 10);
  EXPECT_EQ(out["rejected"][1]["message"], "unexpected character after a closing quote");

  pg_session pg(db_.url());
  const auto rows = pg.query("SELECT partition, payload::text FROM sluice_messages ORDER BY id");
  ASSERT_EQ(rows.size(), 5u);
  const std::vector<std::pair<std::string, std::string>> want = {
      {"1", R"({"id":1,"name":"Lovelace, Ada","amount":12.50,"note":"she said \"hi\""})"},
      {"2", R"({"id":2,"name":"two\nlines","amount":"0001","note":"crlf\r\ninside"})"},
      {"3", R"({"id":3,"name":null,"amount":"7","note":""})"},
      {"4", R"({"id":4,"name":"true","amount":-1e3,"note":null})"},
      {"7", "{\"id\":7,\"name\":\"\xc3\xa9t\xc3\xa9\",\"amount\":1.0,\"note\":\"last\"}"}};
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(*rows[i][0], want[i].first);
    EXPECT_EQ(*rows[i][1], want[i].second);
    EXPECT_TRUE(json::accept(*rows[i][1])) << *rows[i][1];
  }
}

TEST_F(ingest_api, strict_mode_stores_nothing_when_a_row_is_bad) {
  sluice_process s(env());
  wait_ready(s);
  auto res = upload(s, "/api/v1/queues/q/ingest?strict=true", ndjson, "{}\n[]\n{\n{}\n");
  ASSERT_EQ(res.status, 400) << res.body;
  const auto out = res.json();
  EXPECT_EQ(out["error"]["code"], "invalid_row");
  EXPECT_EQ(out["error"]["message"].get<std::string>().rfind("line 3: not JSON", 0), 0u)
      << out.dump();
  EXPECT_EQ(out["accepted"], 0);
  EXPECT_EQ(count(), "0");

  res = upload(s, "/api/v1/queues/q/ingest?strict=true", "text/csv", "a,b\n1,2\n3\n");
  ASSERT_EQ(res.status, 400) << res.body;
  EXPECT_EQ(count(), "0");

  res = upload(s, "/api/v1/queues/q/ingest?strict=true", ndjson, "{}\n[]\n");
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(res.json()["accepted"], 2);
  EXPECT_EQ(count(), "2");
}

TEST_F(ingest_api, a_repeated_upload_with_the_same_idempotency_key_stores_nothing_twice) {
  sluice_process s(env());
  wait_ready(s);
  std::string body;
  for (int i = 0; i < 2500; ++i)
    body += "{\"n\":" + std::to_string(i) + "}\n";
  const std::map<std::string, std::string> key = {{"Idempotency-Key", "upload-42"}};
  auto res = upload(s, "/api/v1/queues/q/ingest", ndjson, body, key);
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(res.json()["accepted"], 2500);
  EXPECT_EQ(res.json()["duplicates"], 0);
  res = upload(s, "/api/v1/queues/q/ingest", ndjson, body, key);
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(res.json()["accepted"], 2500);
  EXPECT_EQ(res.json()["duplicates"], 2500);
  EXPECT_EQ(count(), "2500");
  EXPECT_EQ(count("transaction_id = 'upload-42' || chr(31) || '2500' AND payload->>'n' = '2499'"),
            "1");
  // A longer repeat (the first upload cut short, resent whole) stores only the new lines.
  res = upload(s, "/api/v1/queues/q/ingest", ndjson, body + "{\"n\":2500}\n", key);
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(res.json()["duplicates"], 2500);
  EXPECT_EQ(count(), "2501");
  // Without a key the same rows are new rows.
  res = upload(s, "/api/v1/queues/q/ingest", ndjson, "{\"n\":0}\n");
  EXPECT_EQ(count(), "2502");
}

TEST_F(ingest_api, errors) {
  sluice_process s(env({{"INGEST_MAX_BYTES", "4096"}}));
  wait_ready(s);
  auto res = upload(s, "/api/v1/queues/q/ingest", "application/json", "{}");
  EXPECT_EQ(res.status, 415) << res.body;
  res = http_call(s.port(), "POST", "/api/v1/queues/q/ingest", "", {});
  EXPECT_EQ(res.status, 415) << res.body;
  res = upload(s, "/api/v1/queues/q%20x/ingest", ndjson, "{}");
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_EQ(res.json()["error"]["code"], "invalid_queue");
  for (const auto& [query, parameter] : std::vector<std::pair<std::string, std::string>>{
           {"?strict=yes", "strict"},
           {"?time_format=epoch_s", "time_format"},
           {"?time_field=t&time_format=x", "time_format"},
           {"?partition_field=", "partition_field"},
           {"?bogus=1", "bogus"}}) {
    res = upload(s, "/api/v1/queues/q/ingest" + query, ndjson, "{}");
    EXPECT_EQ(res.status, 400) << query;
    EXPECT_EQ(res.json()["error"]["message"].get<std::string>().rfind(parameter + ":", 0), 0u)
        << res.body;
  }
  res = upload(s, "/api/v1/queues/q/ingest", ndjson, "{}", {{"Idempotency-Key", ""}});
  EXPECT_EQ(res.status, 400) << res.body;
  res = upload(s, "/api/v1/queues/q/ingest", ndjson, "{}",
               {{"Idempotency-Key", std::string(201, 'k')}});
  EXPECT_EQ(res.status, 400) << res.body;

  // Past INGEST_MAX_BYTES: declared up front, refused before the body is read...
  res = upload(s, "/api/v1/queues/q/ingest", ndjson, std::string(5000, ' '));
  EXPECT_EQ(res.status, 413) << res.body;
  // ...or chunked, found out on the way: the rows before the limit that were stored are said.
  std::string row = "{\"pad\":\"" + std::string(90, 'x') + "\"}\n";
  int pieces = 0;
  const auto r = stream(s, "/api/v1/queues/q/ingest", ndjson, [&](std::string& out, std::size_t) {
    if (pieces++ < 60)
      out = row;
  });
  EXPECT_EQ(r.status, 413) << r.body;
  const auto body = json::parse(r.body);
  EXPECT_EQ(body["error"]["code"], "body_too_large");
  EXPECT_EQ(body["accepted"].get<int>(), std::stoi(count()));
}

TEST_F(ingest_api, the_ingest_command_streams_a_file) {
  sluice_process s(env());
  wait_ready(s);
  temp_dir dir;
  const std::string file = dir.path() + "/rows.csv";
  {
    std::ofstream out(file);
    out << "device,ts,value\n";
    for (int i = 0; i < 3000; ++i)
      out << "d" << i % 7 << "," << 1796230800 + i << "," << i << "\n";
    out << "bad row\n";
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(s.port());
  auto r =
      run_sluice({"ingest", file, "--url", url, "--queue", "cmd", "--partition-field", "device",
                  "--time-field", "ts", "--time-format", "epoch_s", "--idempotency-key", "file-1"});
  EXPECT_EQ(r.exit_code, 1) << r.output;  // one row rejected
  EXPECT_NE(r.output.find("accepted 3000 rows (0 already stored"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rejected 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("line 3002: expected 3 fields, got 1"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("ETA"), std::string::npos) << "no progress display without a terminal";
  EXPECT_EQ(count("queue = 'cmd'"), "3000");
  EXPECT_EQ(count("queue = 'cmd' AND partition = 'd3' AND event_time IS NOT NULL"), "429");

  r = run_sluice({"ingest", file, "--url", url, "--queue", "cmd", "--partition-field", "device",
                  "--idempotency-key", "file-1"});
  EXPECT_NE(r.output.find("accepted 3000 rows (3000 already stored"), std::string::npos)
      << r.output;
  EXPECT_EQ(count("queue = 'cmd'"), "3000");

  r = run_sluice({"ingest", file, "--url", url, "--queue", "cmd", "--strict"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("HTTP 400 invalid_row"), std::string::npos) << r.output;

  r = run_sluice({"ingest", file, "--url", "http://127.0.0.1:1", "--queue", "cmd"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot connect"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sluice::test
