//! Tests of the frame codec on bytes as a client (or an attacker) sends them: every length
//! form, every prefix of a frame, fragments, and each protocol violation by name.

use super::*;

const LIMITS: Limits = Limits {
    max_frame: 1024,
    max_message: 2048,
};

fn client(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut f = vec![first];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

fn one(buf: &[u8]) -> Result<Option<Message>, Violation> {
    let mut consumed = 0;
    decode(buf, &mut Fragments::default(), LIMITS, &mut consumed)
}

#[test]
fn a_masked_text_frame_decodes_at_every_length_form() {
    for n in [0, 5, 125, 126, 1000] {
        let text = "x".repeat(n);
        let frame = client(0x81, text.as_bytes());
        let mut consumed = 0;
        let got = decode(&frame, &mut Fragments::default(), LIMITS, &mut consumed);
        assert_eq!(consumed, frame.len());
        match got {
            Ok(Some(Message::Text(t))) => assert_eq!(t.as_str(), text),
            other => panic!("{n}: {other:?}"),
        }
    }
}

#[test]
fn every_prefix_of_a_frame_asks_for_more() {
    let frame = client(0x81, &[b'a'; 300]);
    for cut in 0..frame.len() {
        let mut consumed = 0;
        let got = decode(
            &frame[..cut],
            &mut Fragments::default(),
            LIMITS,
            &mut consumed,
        );
        assert_eq!(got, Ok(None), "cut at {cut}");
        assert_eq!(consumed, 0);
    }
}

#[test]
fn fragments_join_into_one_message() {
    let mut f = Fragments::default();
    let mut consumed = 0;
    let a = client(0x01, b"hel");
    assert_eq!(decode(&a, &mut f, LIMITS, &mut consumed), Ok(None));
    assert_eq!(consumed, a.len());
    // A ping between fragments is allowed.
    let p = client(0x89, b"p");
    assert!(matches!(
        decode(&p, &mut f, LIMITS, &mut consumed),
        Ok(Some(Message::Ping(_)))
    ));
    let b = client(0x80, b"lo");
    match decode(&b, &mut f, LIMITS, &mut consumed) {
        Ok(Some(Message::Text(t))) => assert_eq!(t.as_str(), "hello"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn violations_are_named() {
    assert_eq!(one(&client(0xC1, b"{}")), Err(Violation::ReservedBits));
    let mut unmasked = client(0x81, b"{}");
    unmasked[1] &= 0x7F;
    assert_eq!(one(&unmasked), Err(Violation::Unmasked));
    assert_eq!(one(&client(0x83, b"")), Err(Violation::UnknownOpcode));
    assert_eq!(one(&client(0x09, b"")), Err(Violation::BadControlFrame));
    assert_eq!(
        one(&client(0x89, &[0; 126])),
        Err(Violation::BadControlFrame)
    );
    assert_eq!(one(&client(0x80, b"x")), Err(Violation::BadFragmentation));
    assert_eq!(one(&client(0x81, &[b'a'; 1025])), Err(Violation::TooBig));
    assert_eq!(
        one(&client(0x81, &[0xff, 0xfe])),
        Err(Violation::InvalidUtf8)
    );
    assert_eq!(one(&client(0x88, &[3])), Err(Violation::BadClose));
    assert_eq!(one(&client(0x88, &[0x03, 0xED])), Err(Violation::BadClose)); // 1005
    let mut f = Fragments::default();
    let mut consumed = 0;
    let _ = decode(&client(0x01, b"a"), &mut f, LIMITS, &mut consumed);
    assert_eq!(
        decode(&client(0x81, b"b"), &mut f, LIMITS, &mut consumed),
        Err(Violation::BadFragmentation)
    );
}

#[test]
fn a_too_big_frame_is_refused_from_its_header_alone() {
    let header = [0x81, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0];
    assert_eq!(one(&header), Err(Violation::TooBig));
}

#[test]
fn fragments_over_the_message_limit_are_refused() {
    let mut f = Fragments::default();
    let mut consumed = 0;
    let part = client(0x00, &[b'a'; 1000]);
    let _ = decode(&client(0x01, &[b'a'; 1000]), &mut f, LIMITS, &mut consumed);
    assert_eq!(decode(&part, &mut f, LIMITS, &mut consumed), Ok(None));
    assert_eq!(
        decode(&part, &mut f, LIMITS, &mut consumed),
        Err(Violation::TooBig)
    );
}

#[test]
fn close_frames_carry_code_and_reason() {
    match one(&client(0x88, b"\x03\xe8bye")) {
        Ok(Some(Message::Close(Some(c)))) => {
            assert_eq!((c.code, c.reason.as_str()), (1000, "bye"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(one(&client(0x88, b"")), Ok(Some(Message::Close(None))));
}

#[test]
fn server_frames_are_unmasked_with_the_shortest_length() {
    for (n, header) in [(5usize, 2usize), (126, 4), (70_000, 10)] {
        let mut out = Vec::new();
        encode(&mut out, Opcode::Text, &vec![b'a'; n]);
        assert_eq!(out.len(), header + n);
        assert_eq!(out[0], 0x81);
        assert_eq!(out[1] & 0x80, 0);
    }
    let mut out = Vec::new();
    encode_close(&mut out, 1008, &"r".repeat(300));
    assert!(out.len() <= 127);
    assert_eq!(&out[2..4], &1008u16.to_be_bytes());
}
