#include <shoal/conformance/report.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kj/debug.h>
#include <kj/map.h>
#include <shoal/codec/text.h>
#include <shoal/conformance/fixture.h>
#include <shoal/conformance/requirements.h>

namespace shoal::conformance {

void Tally::add(Verdict v) {
  switch (v) {
    case Verdict::ok: ++ok; break;
    case Verdict::fail: ++fail; break;
    case Verdict::nonStrict: ++nonStrict; break;
    case Verdict::unimplemented: ++unimplemented; break;
    case Verdict::error: ++error; break;
    case Verdict::xfail: ++xfail; break;
    case Verdict::xpass: ++xpass; break;
  }
}

namespace {

// Length of the valid UTF-8 character at `i`, or 0.
size_t charLength(kj::StringPtr text, size_t i) {
  for (size_t n = 1; n <= 4 && i + n <= text.size(); ++n) {
    if (codec::isValidUtf8(text.slice(i, i + n))) return n;
  }
  return 0;
}

// U+2028/2029, bidi embeddings/overrides U+202A..202E and isolates U+2066..2069: invisible
// characters that reorder or break what a reader sees.
bool invisibleFormat(kj::StringPtr text, size_t i, size_t n) {
  if (n != 3 || kj::byte(text[i]) != 0xe2) return false;
  kj::byte b1 = kj::byte(text[i + 1]), b2 = kj::byte(text[i + 2]);
  return (b1 == 0x80 && b2 >= 0xa8 && b2 <= 0xae) || (b1 == 0x81 && b2 >= 0xa6 && b2 <= 0xa9);
}

// Walks `text` character by character: `keep` for safe characters, `escape` for the others.
template <typename Keep, typename Escape>
void walk(kj::StringPtr text, Keep keep, Escape escape) {
  size_t i = 0;
  while (i < text.size()) {
    size_t n = charLength(text, i);
    if (n == 0 || invisibleFormat(text, i, n) ||
        (n <= 2 && codec::isControlAt(text.slice(i, i + n), 0) && text[i] != '\n')) {
      for (size_t k = 0; k < kj::max(n, size_t(1)); ++k)
        escape(kj::byte(text[i + k]));
      i += kj::max(n, size_t(1));
      continue;
    }
    keep(text.slice(i, i + n));
    i += n;
  }
}

constexpr char kHex[] = "0123456789abcdef";

kj::String jsonString(kj::StringPtr text) {
  kj::Vector<char> out(text.size() + 2);
  out.add('"');
  walk(
      text,
      [&](kj::ArrayPtr<const char> c) {
        if (c.size() == 1 && (c[0] == '"' || c[0] == '\\')) out.add('\\');
        if (c.size() == 1 && c[0] == '\n') {
          out.addAll("\\n"_kj);
          return;
        }
        out.addAll(c);
      },
      [&](kj::byte b) { out.addAll(kj::str("\\u00", kHex[b >> 4], kHex[b & 15])); });
  out.add('"');
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

kj::String xml(kj::StringPtr text) {
  kj::Vector<char> out(text.size());
  walk(
      text,
      [&](kj::ArrayPtr<const char> c) {
        char one = c.size() == 1 ? c[0] : '\0';
        if (one == '&') {
          out.addAll("&amp;"_kj);
        } else if (one == '<') {
          out.addAll("&lt;"_kj);
        } else if (one == '>') {
          out.addAll("&gt;"_kj);
        } else if (one == '"') {
          out.addAll("&quot;"_kj);
        } else if (one == '\'') {
          out.addAll("&#39;"_kj);
        } else {
          out.addAll(c);
        }
      },
      [&](kj::byte b) { out.addAll(kj::str("\\x", kHex[b >> 4], kHex[b & 15])); });
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

kj::String ms(uint64_t micros) {
  return kj::str(micros / 1000, ".", (micros / 100) % 10);
}

kj::StringPtr levelName(Level l) {
  return l == Level::must ? "MUST" : "SHOULD";
}

kj::StringPtr requirementText(const CaseSpec& spec) {
  KJ_IF_MAYBE (r, findRequirement(spec.requirement)) {
    return r->text;
  }
  return "(sanity check: the target is up and completes a handshake)";
}

kj::String slug(kj::StringPtr id) {
  kj::Vector<char> out;
  for (char c : id)
    out.add(c == '/' ? '-' : c);
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

}  // namespace

kj::String forTerminal(kj::StringPtr text) {
  kj::Vector<char> out(text.size());
  walk(
      text, [&](kj::ArrayPtr<const char> c) { out.addAll(c); },
      [&](kj::byte b) { out.addAll(kj::str("\\x", kHex[b >> 4], kHex[b & 15])); });
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

// --- console
// ---------------------------------------------------------------------------------------

void writeConsole(const RunReport& report, kj::OutputStream& out, bool verbose) {
  auto line = [&](kj::String s) {
    auto text = kj::str(s, "\n");
    out.write(text.begin(), text.size());
  };
  kj::TreeMap<kj::String, Tally> areas;
  Tally total;
  for (auto& r : report.cases) {
    total.add(r.verdict);
    areas.upsert(kj::str(areaOf(*r.spec)), Tally{}, [](Tally&, Tally&&) {});
    KJ_ASSERT_NONNULL(areas.find(areaOf(*r.spec))).add(r.verdict);
    bool interesting = r.verdict != Verdict::ok && r.verdict != Verdict::unimplemented;
    if (!verbose && !interesting) continue;
    line(kj::str(kj::repeat(' ', kj::max(0, 13 - int(name(r.verdict).size()))), name(r.verdict),
                 "  ", r.spec->id, "  [", name(r.spec->role), "]  ", ms(r.micros), " ms  ",
                 r.spec->title));
    if (r.reason.size() > 0) line(kj::str("               ", forTerminal(r.reason)));
    if (interesting && r.expected.size() > 0) {
      line(kj::str("               expected: ", forTerminal(r.expected)));
      line(kj::str("               actual:   ", forTerminal(r.actual)));
    }
  }
  line(kj::str("\narea        OK  FAIL  NON-STRICT  UNIMPL  ERROR  XFAIL  XPASS"));
  auto row = [&](kj::StringPtr area, const Tally& t) {
    char buffer[160];
    snprintf(buffer, sizeof(buffer), "%-8s %5u %5u %11u %7u %6u %6u %6u", area.cStr(), t.ok, t.fail,
             t.nonStrict, t.unimplemented, t.error, t.xfail, t.xpass);
    line(kj::str(buffer));
  };
  for (auto& a : areas)
    row(a.key, a.value);
  row("total", total);
  line(kj::str(total.total(), " cases against ", forTerminal(report.target), " (",
               report.tls ? "TLS" : "plaintext", ", -j ", report.jobs, ") in ",
               report.micros / 1000000, ".", (report.micros / 100000) % 10, " s"));
}

// --- JUnit
// -----------------------------------------------------------------------------------------

kj::String junitXml(const RunReport& report) {
  Tally total;
  for (auto& r : report.cases)
    total.add(r.verdict);
  kj::Vector<kj::String> parts;
  parts.add(kj::str(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n<testsuite name=\"shoal-conform-",
      report.tls ? "tls" : "plaintext", "\" tests=\"", total.total(), "\" failures=\"",
      total.fail + total.xpass + (report.strict ? total.nonStrict : 0), "\" errors=\"", total.error,
      "\" skipped=\"", total.unimplemented + total.xfail, "\" time=\"", ms(report.micros),
      "\">\n"));
  for (auto& r : report.cases) {
    parts.add(kj::str("<testcase classname=\"", xml(areaOf(*r.spec)), "\" name=\"", xml(r.spec->id),
                      " [", name(r.spec->role), "] ", xml(r.spec->title), "\" time=\"",
                      r.micros / 1000000, ".", kj::repeat('0', 0), (r.micros / 1000) % 1000,
                      "\">"));
    auto detail = kj::str(r.brokenRequirement, ": expected ", r.expected, "; actual: ", r.actual,
                          r.reason.size() > 0 ? kj::str(" (", r.reason, ")") : kj::str());
    switch (r.verdict) {
      case Verdict::ok: break;
      case Verdict::fail:
      case Verdict::xpass:
        parts.add(
            kj::str("<failure message=\"", xml(name(r.verdict)), "\">", xml(detail), "</failure>"));
        break;
      case Verdict::nonStrict:
        if (report.strict) {
          parts.add(kj::str("<failure message=\"NON-STRICT\">", xml(detail), "</failure>"));
        } else {
          parts.add(kj::str("<system-out>NON-STRICT: ", xml(detail), "</system-out>"));
        }
        break;
      case Verdict::error: parts.add(kj::str("<error message=\"", xml(r.reason), "\"/>")); break;
      case Verdict::unimplemented:
      case Verdict::xfail:
        parts.add(
            kj::str("<skipped message=\"", xml(name(r.verdict)), ": ", xml(r.reason), "\"/>"));
        break;
    }
    parts.add(kj::str("</testcase>\n"));
  }
  parts.add(kj::str("</testsuite>\n</testsuites>\n"));
  return kj::strArray(parts, "");
}

// --- JSON
// ------------------------------------------------------------------------------------------

kj::String jsonIndex(const RunReport& report) {
  Tally total;
  for (auto& r : report.cases)
    total.add(r.verdict);
  kj::Vector<kj::String> cases;
  for (auto& r : report.cases) {
    cases.add(kj::str(
        "    {\"id\": ", jsonString(r.spec->id), ", \"area\": ", jsonString(areaOf(*r.spec)),
        ", \"requirement\": ", jsonString(r.spec->requirement), ", \"level\": \"",
        levelName(r.level), "\", \"role\": \"", name(r.spec->role),
        "\", \"title\": ", jsonString(r.spec->title), ", \"verdict\": \"", name(r.verdict),
        "\", \"ms\": ", ms(r.micros), ", \"broken\": ", jsonString(r.brokenRequirement),
        ", \"expected\": ", jsonString(r.expected), ", \"actual\": ", jsonString(r.actual),
        ", \"reason\": ", jsonString(r.reason), ", \"close\": ", jsonString(r.close),
        ", \"badInputs\": ", jsonString(r.spec->badInputs == nullptr ? "" : r.spec->badInputs),
        ", \"anchor\": \"", slug(r.spec->id), "\"}"));
  }
  return kj::str("{\n  \"format\": \"shoal-conform/1\",\n  \"target\": ", jsonString(report.target),
                 ",\n  \"mode\": \"", report.tls ? "tls" : "plaintext", "\",\n  \"started\": \"",
                 report.started, "\",\n  \"ms\": ", ms(report.micros),
                 ",\n  \"jobs\": ", report.jobs, ",\n  \"totals\": {\"cases\": ", total.total(),
                 ", \"OK\": ", total.ok, ", \"FAIL\": ", total.fail,
                 ", \"NON-STRICT\": ", total.nonStrict,
                 ", \"UNIMPLEMENTED\": ", total.unimplemented, ", \"ERROR\": ", total.error,
                 ", \"XFAIL\": ", total.xfail, ", \"XPASS\": ", total.xpass, "},\n  \"cases\": [\n",
                 kj::strArray(cases, ",\n"), "\n  ]\n}\n");
}

// --- HTML
// ------------------------------------------------------------------------------------------

namespace {

constexpr const char kStyle[] = R"css(
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.v-OK{color:#176b2c}.v-FAIL,.v-ERROR,.v-XPASS{color:#b00020;font-weight:bold}.v-NON-STRICT{color:#a05a00}.v-UNIMPLEMENTED,.v-XFAIL{color:#666}
section.case{border:1px solid #ddd;border-radius:4px;margin:6px 0;padding:4px 8px}
section.case>details>summary{cursor:pointer}
blockquote{margin:4px 0 4px 1em;padding-left:8px;border-left:3px solid #ccc;color:#444}
pre{margin:0;white-space:pre-wrap;word-break:break-all;font:12px/1.3 ui-monospace,monospace}
.bg{opacity:.55}.k-violation{background:#fde2e4}.k-close,.k-tls{background:#eef3ff}.k-timer,.k-step{background:#f6f6f6}
#filters label{margin-right:1em}
)css";

constexpr const char kScript[] = R"js(
(function(){
  var cases=document.querySelectorAll('section.case');
  document.getElementById('rendered').textContent='rendered '+cases.length+' cases';
  function apply(){
    var show={};
    document.querySelectorAll('#filters input').forEach(function(i){show[i.value]=i.checked;});
    cases.forEach(function(c){c.style.display=show[c.dataset.verdict]?'':'none';});
  }
  document.querySelectorAll('#filters input').forEach(function(i){i.addEventListener('change',apply);});
  apply();
})();
)js";

kj::String transcriptTable(const CaseResult& r) {
  kj::Vector<kj::String> rows;
  rows.add(
      kj::str("<table class=\"transcript\"><tr><th>ms</th><th>conn</th><th>what</th><th>"
              "frame (Cap'n Proto text) / event</th></tr>"));
  for (auto& e : r.transcript) {
    auto hexPart = e.hex.size() == 0 ? kj::str()
                                     : kj::str("<details><summary>hex</summary><pre>", xml(e.hex),
                                               "</pre></details>");
    rows.add(kj::str("<tr class=\"k-", slug(name(e.kind)), e.background ? " bg" : "", "\"><td>",
                     ms(e.atMicros), "</td><td>",
                     e.connection == 0 ? kj::str("") : kj::str(e.connection), "</td><td>",
                     name(e.kind), e.background ? " (background)" : "", "</td><td><pre>",
                     xml(e.text), "</pre>", hexPart, "</td></tr>"));
  }
  rows.add(kj::str("</table>"));
  return kj::strArray(rows, "\n");
}

}  // namespace

kj::String htmlReport(const RunReport& report) {
  kj::TreeMap<kj::String, Tally> areas;
  Tally total;
  for (auto& r : report.cases) {
    total.add(r.verdict);
    areas.upsert(kj::str(areaOf(*r.spec)), Tally{}, [](Tally&, Tally&&) {});
    KJ_ASSERT_NONNULL(areas.find(areaOf(*r.spec))).add(r.verdict);
  }
  kj::Vector<kj::String> out;
  out.add(kj::str(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>shoal-conform: ",
      total.total(), " cases</title><style>", kStyle, "</style></head><body>\n"));
  out.add(kj::str("<h1>shoal-conform report</h1><p>Target: <code>", xml(report.target), "</code>, ",
                  report.tls ? "TLS" : "plaintext", ", started ", report.started, ", ",
                  ms(report.micros), " ms with -j ", report.jobs,
                  ". <span id=\"rendered\">(not rendered)</span></p>\n"));
  out.add(
      kj::str("<h2>Summary per area</h2><table><tr><th>area</th><th>cases</th><th>OK</th>"
              "<th>FAIL</th><th>NON-STRICT</th><th>UNIMPLEMENTED</th><th>ERROR</th>"
              "<th>XFAIL</th><th>XPASS</th></tr>"));
  auto row = [&](kj::StringPtr area, const Tally& t) {
    out.add(kj::str("<tr><td>", xml(area), "</td><td>", t.total(), "</td><td>", t.ok, "</td><td>",
                    t.fail, "</td><td>", t.nonStrict, "</td><td>", t.unimplemented, "</td><td>",
                    t.error, "</td><td>", t.xfail, "</td><td>", t.xpass, "</td></tr>"));
  };
  for (auto& a : areas)
    row(a.key, a.value);
  row("total", total);
  out.add(kj::str("</table>\n<h2>Cases</h2><p id=\"filters\">Show: "));
  for (auto v : {Verdict::ok, Verdict::fail, Verdict::nonStrict, Verdict::unimplemented,
                 Verdict::error, Verdict::xfail, Verdict::xpass}) {
    out.add(kj::str("<label><input type=\"checkbox\" value=\"", name(v), "\" checked> ", name(v),
                    "</label>"));
  }
  out.add(kj::str("</p>\n"));
  for (auto& r : report.cases) {
    auto v = name(r.verdict);
    out.add(kj::str(
        "<section class=\"case\" id=\"", slug(r.spec->id), "\" data-verdict=\"", v, "\"><details",
        r.verdict == Verdict::fail || r.verdict == Verdict::error ? " open" : "",
        "><summary><span class=\"v-", v, "\">", v, "</span> <b>", xml(r.spec->id), "</b> [target ",
        name(r.spec->role), "] ", xml(r.spec->title), " — ", ms(r.micros), " ms</summary>"));
    out.add(kj::str(
        "<p><b>", r.spec->requirement, "</b> (", levelName(r.level), ")",
        r.spec->badInputs == nullptr ? kj::str() : kj::str(", bad inputs ", xml(r.spec->badInputs)),
        ":</p><blockquote>", xml(requirementText(*r.spec)), "</blockquote>"));
    if (r.expected.size() > 0 || r.reason.size() > 0) {
      out.add(kj::str(
          "<p>",
          r.brokenRequirement.size() > 0 ? kj::str("<b>", r.brokenRequirement, "</b> ") : kj::str(),
          r.expected.size() > 0 ? kj::str("expected: <code>", xml(r.expected),
                                          "</code><br>actual: <code>", xml(r.actual), "</code>")
                                : kj::str(),
          r.reason.size() > 0 ? kj::str("<br>", xml(r.reason)) : kj::str(), "</p>"));
    }
    if (r.close.size() > 0) out.add(kj::str("<p>Close: ", xml(r.close), "</p>"));
    out.add(transcriptTable(r));
    if (r.targetLog.size() > 0) {
      out.add(kj::str("<details><summary>target output (tail)</summary><pre>", xml(r.targetLog),
                      "</pre></details>"));
    }
    out.add(kj::str("</details></section>\n"));
  }
  out.add(kj::str("<script>", kScript, "</script></body></html>\n"));
  return kj::strArray(out, "");
}

void writeReports(const RunReport& report, kj::StringPtr dir) {
  if (mkdir(dir.cStr(), 0755) != 0 && errno != EEXIST) {
    KJ_FAIL_REQUIRE("cannot create the report folder", dir, strerror(errno));
  }
  writeFile(kj::str(dir, "/report.html"), htmlReport(report).asBytes());
  writeFile(kj::str(dir, "/results.json"), jsonIndex(report).asBytes());
  writeFile(kj::str(dir, "/junit.xml"), junitXml(report).asBytes());
}

}  // namespace shoal::conformance
