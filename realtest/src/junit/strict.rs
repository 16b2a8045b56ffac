//! `--junit-format strict`: the report as the Jenkins xUnit plugin's `junit-10.xsd` accepts it
//! (the plugin skips a file that fails to validate). That schema refuses, and this form drops:
//! `skipped`, `timestamp` and `uuid` on `<testsuites>`; every attribute of `<testcase>` but
//! `name`, `classname`, `time` and `group` (so `file`, `line`, `timestamp`); `<properties>` in a
//! `<testcase>`. Suites keep their properties, `timestamp`, `hostname` and `skipped` count.

use quick_junit::Report;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, Writer};

/// Attributes `junit-10.xsd` allows on `<testcase>`.
const TESTCASE_ATTRIBUTES: [&str; 4] = ["name", "classname", "time", "group"];
/// Attributes `junit-10.xsd` allows on `<testsuites>`.
const TESTSUITES_ATTRIBUTES: [&str; 5] = ["name", "time", "tests", "failures", "errors"];

/// `report` in the strict form, serialised.
pub fn to_xml(report: &Report) -> Result<String, String> {
    let mut report = report.clone();
    report.timestamp = None;
    report.uuid = None;
    for suite in &mut report.test_suites {
        for case in &mut suite.test_cases {
            case.timestamp = None;
            case.properties.clear();
            case.extra
                .retain(|name, _| TESTCASE_ATTRIBUTES.contains(&name.as_str()));
        }
    }
    let xml = report.to_string().map_err(|err| err.to_string())?;
    // quick-junit always writes `skipped` on <testsuites>: drop what the schema refuses there.
    let mut reader = Reader::from_str(&xml);
    let mut writer = Writer::new(Vec::with_capacity(xml.len()));
    loop {
        let event = reader.read_event().map_err(|err| err.to_string())?;
        let event = match event {
            Event::Start(tag) if tag.name().as_ref() == b"testsuites" => {
                Event::Start(allowed_only(&tag, &TESTSUITES_ATTRIBUTES)?)
            }
            Event::Empty(tag) if tag.name().as_ref() == b"testsuites" => {
                Event::Empty(allowed_only(&tag, &TESTSUITES_ATTRIBUTES)?)
            }
            Event::Eof => break,
            other => other,
        };
        writer.write_event(event).map_err(|err| err.to_string())?;
    }
    String::from_utf8(writer.into_inner()).map_err(|err| err.to_string())
}

fn allowed_only(tag: &BytesStart, allowed: &[&str]) -> Result<BytesStart<'static>, String> {
    let mut kept = BytesStart::new(String::from_utf8_lossy(tag.name().as_ref()).into_owned());
    for attribute in tag.attributes() {
        let attribute = attribute.map_err(|err| err.to_string())?;
        if allowed
            .iter()
            .any(|name| attribute.key.as_ref() == name.as_bytes())
        {
            kept.push_attribute(attribute);
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use quick_junit::{Property, TestCase, TestCaseStatus, TestSuite};

    use super::*;

    #[test]
    fn what_the_schema_refuses_is_dropped_and_the_rest_kept() {
        let mut case = TestCase::new("t", TestCaseStatus::skipped());
        case.set_classname("bin.m")
            .add_property(Property::new("tags", "slow"));
        case.extra.insert("file".into(), "a.rs".into());
        let mut suite = TestSuite::new("bin");
        suite.add_property(Property::new("kernel", "6.1"));
        suite.add_test_case(case);
        let mut report = Report::new("realtest");
        report.add_test_suite(suite);
        let xml = to_xml(&report).unwrap();
        assert!(
            xml.contains("<testsuites name=\"realtest\" tests=\"1\" failures=\"0\" errors=\"0\">"),
            "{xml}"
        );
        assert!(
            xml.contains("<testcase name=\"t\" classname=\"bin.m\">"),
            "{xml}"
        );
        assert!(
            xml.contains("<property name=\"kernel\" value=\"6.1\"/>"),
            "{xml}"
        );
        assert!(!xml.contains("tags") && !xml.contains("file="), "{xml}");
        // Still a report the merge can read back.
        let back = Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(back.test_suites[0].skipped, 1);
    }
}
