//! Tests of the Pusher wire format as pusher-js reads it: channel names, decoded client frames,
//! server frames with their stringified `data`, and what the renderer sends per room event.

use super::*;
use activenow_engine::Identity;

fn value(b: Bytes) -> Value {
    serde_json::from_slice(&b).unwrap()
}

#[test]
fn channel_names() {
    for ok in [
        "a",
        "presence-room.1",
        "private-encrypted-x",
        "a=b@c,d;e_f-g",
    ] {
        assert!(valid_channel(ok), "{ok}");
    }
    for bad in [
        "",
        "a b",
        "pusher:x",
        "#server-to-user-1",
        "é",
        &"a".repeat(165),
    ] {
        assert!(!valid_channel(bad), "{bad}");
    }
    assert_eq!(ChannelKind::of("presence-x"), ChannelKind::Presence);
    assert_eq!(ChannelKind::of("private-x"), ChannelKind::Private);
    assert_eq!(
        ChannelKind::of("private-encrypted-x"),
        ChannelKind::Encrypted
    );
    assert_eq!(ChannelKind::of("x-private-"), ChannelKind::Public);
}

#[test]
fn decoding() {
    match decode(r#"{"event":"pusher:subscribe","data":{"channel":"presence-a","auth":"k:s","channel_data":"{\"user_id\":\"1\"}"}}"#).unwrap() {
        Command::Subscribe { channel, auth, channel_data } => {
            assert_eq!(channel, "presence-a");
            assert_eq!(auth.as_deref(), Some("k:s"));
            assert_eq!(channel_data.as_deref(), Some(r#"{"user_id":"1"}"#));
        }
        other => panic!("{other:?}"),
    }
    // Some clients send data as a JSON string.
    assert!(matches!(
        decode(r#"{"event":"pusher:subscribe","data":"{\"channel\":\"a\"}"}"#),
        Ok(Command::Subscribe { .. })
    ));
    assert!(matches!(
        decode(r#"{"event":"pusher:ping","data":{}}"#),
        Ok(Command::Ping)
    ));
    match decode(r#"{"event":"client-typing","channel":"private-a","data":{"x":1}}"#).unwrap() {
        Command::ClientEvent { data, .. } => assert_eq!(data.unwrap().get(), r#"{"x":1}"#),
        other => panic!("{other:?}"),
    }
    for bad in [
        "nope",
        r#"{"data":{}}"#,
        r#"{"event":"pusher_internal:member_added","channel":"presence-a","data":"{}"}"#,
        r#"{"event":"hello"}"#,
        r#"{"event":"pusher:subscribe","data":{}}"#,
        r#"{"event":"client-x","data":{}}"#,
    ] {
        assert_eq!(decode(bad).unwrap_err().0, code::GENERIC, "{bad}");
    }
}

#[test]
fn frames() {
    let established = value(connection_established("123.456", 120));
    assert_eq!(established["event"], "pusher:connection_established");
    let data: Value = serde_json::from_str(established["data"].as_str().unwrap()).unwrap();
    assert_eq!(data, json!({"socket_id":"123.456","activity_timeout":120}));
    let presence = json!({"presence":{"ids":["1"],"hash":{"1":{}},"count":1}});
    let ok = value(subscription_succeeded("presence-a", Some(&presence)));
    let data: Value = serde_json::from_str(ok["data"].as_str().unwrap()).unwrap();
    assert_eq!(data, presence);
    assert_eq!(
        value(error(4001, "nope")),
        json!({"event":"pusher:error","data":{"code":4001,"message":"nope"}})
    );
}

#[test]
fn renderer() {
    let room = Room::parse("pusher:app1:presence-a").unwrap();
    assert_eq!(channel_of(&room), Some("presence-a"));
    let p = Publication {
        event: "client-typing".into(),
        data: json!({"x":1}),
        from: Some(Identity::new("u1")),
        ts_ms: 1,
    };
    let frame = PusherRenderer::default()
        .render(&room, &RoomEvent::Publication(p))
        .unwrap();
    assert_eq!(
        value(frame),
        json!({"event":"client-typing","channel":"presence-a","data":{"x":1},"user_id":"u1"})
    );
    let internal = Publication {
        event: "\u{1}metadata".into(),
        data: json!({}),
        from: None,
        ts_ms: 1,
    };
    assert!(PusherRenderer::default()
        .render(&room, &RoomEvent::Publication(internal))
        .is_none());
    let foreign = Room::parse("demo").unwrap();
    let p = Publication {
        event: "e".into(),
        data: json!("x"),
        from: None,
        ts_ms: 1,
    };
    assert!(PusherRenderer::default()
        .render(&foreign, &RoomEvent::Publication(p))
        .is_none());
}
