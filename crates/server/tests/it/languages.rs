//! Visitor-facing texts in the widget's language: the settings, the status, the handover's
//! answer and the socket's status frames.

use baton_protocol::ws::*;
use serde_json::json;

use crate::harness::start;

#[tokio::test]
async fn every_sentence_comes_in_the_widget_s_language() {
    let s = start("[texts.de]\nsend = \"Los\"\n").await;
    // The settings: the closest language, its direction, its texts.
    let de: WidgetSettings =
        serde_json::from_value(s.get_json("/api/v1/widget?locale=de-AT").await).unwrap();
    assert_eq!((de.locale.as_str(), de.dir.as_str()), ("de", "ltr"));
    assert_eq!(de.texts["send"], "Los");
    assert_eq!(de.texts["message_label"], "Nachricht");
    let ar: WidgetSettings =
        serde_json::from_value(s.get_json("/api/v1/widget?locale=ar").await).unwrap();
    assert_eq!((ar.locale.as_str(), ar.dir.as_str()), ("ar", "rtl"));
    assert_eq!(ar.texts["send"], "إرسال");
    let other: WidgetSettings =
        serde_json::from_value(s.get_json("/api/v1/widget?locale=fr").await).unwrap();
    assert_eq!(
        (other.locale.as_str(), other.texts["send"].as_str()),
        ("en", "Send")
    );
    let none: WidgetSettings = serde_json::from_value(s.get_json("/api/v1/widget").await).unwrap();
    assert_eq!(none.locale, "en");

    // The status.
    let status = s.get_json("/api/v1/status?locale=de").await;
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("Zurzeit ist kein Mitarbeiter"),
        "{status}"
    );

    // The handover's answer, and the socket's status frames.
    let v = s.visitor().await;
    let (code, body) = s
        .post_as(
            "/api/v1/handover",
            Some(&v.token),
            &json!({"visitor_id": v.id, "locale": "ar"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let h: HandoverResponse = serde_json::from_value(body).unwrap();
    assert!(h.message.starts_with("لا يوجد موظفون"), "{}", h.message);
    assert_eq!(h.status.message, Some(h.message.clone()));
    let session = h.session.unwrap();
    let mut ws = crate::harness::Ws::connect(
        &s.ws_url(&format!("/api/v1/visitor/ws?token={}&locale=ar", v.token)),
    )
    .await;
    ws.send(&VisitorFrame::Hello {
        last_seq: session.head_seq,
    })
    .await;
    let VisitorServerFrame::Status { status } = ws
        .recv_until(|f: &VisitorServerFrame| matches!(f, VisitorServerFrame::Status { .. }))
        .await
    else {
        unreachable!()
    };
    assert!(status.message.unwrap().starts_with("لا يوجد موظفون"));
}
