//! Which table items become rows: delivery records only, and none with a bad envelope.

use super::*;

fn item<const N: usize>(pairs: [(&str, AttributeValue); N]) -> HashMap<String, AttributeValue> {
    pairs.into_iter().map(|(n, v)| (n.to_owned(), v)).collect()
}

#[test]
fn given_table_items_then_only_delivery_records_become_rows_and_bad_envelopes_are_left_out() {
    let claim = [(table::KEY, s("crm#1")), (table::STATE, s("completed"))];
    assert!(record(&item(claim)).is_none());
    let queues = AttributeValue::L(vec![s("crm"), s("fax"), AttributeValue::N("1".into())]);
    let garbled = AttributeValue::B(vec![0xff, 0x00, 0x13].into());
    let delivery = item([
        (table::KEY, s("call.ended#1")),
        (table::QUEUES, queues.clone()),
        (table::ENVELOPE, garbled),
        (table::UPDATED_AT, AttributeValue::N("42".into())),
    ]);
    let record = record(&delivery).expect("a delivery record");
    let read = (
        record.key.as_str(),
        record.updated_at,
        record.queues.as_slice(),
    );
    assert_eq!(read, ("call.ended#1", 42, [Integration::Crm].as_slice()));
    assert!(record.envelope.is_none());
    assert!(super::record(&item([(table::QUEUES, queues)])).is_none());
}
