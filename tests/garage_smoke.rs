//! Proves the test harness: a garage server started by `common::Garage` serves S3 requests
//! signed with the fixed test key, and refuses a wrong secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Instant;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, path::Path};

fn store(g: &common::Garage, secret: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(&g.endpoint)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_region(&g.region)
            .with_bucket_name(&g.bucket)
            .with_access_key_id(&g.access_key_id)
            .with_secret_access_key(secret)
            .build()
            .expect("build S3 client"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn garage_serves_s3_and_checks_signatures() {
    let t0 = Instant::now();
    let garage = common::Garage::start();
    eprintln!(
        "garage started in {:.2?} at {}",
        t0.elapsed(),
        garage.endpoint
    );

    let s3 = store(&garage, &garage.secret_access_key);
    let a = Path::from("smoke/a.txt");
    let b = Path::from("smoke/sub/b.bin");
    let big: Vec<u8> = common::XorShift::new(7).bytes(3 * 1024 * 1024);

    // put + get
    s3.put(&a, PutPayload::from_static(b"hello garage"))
        .await
        .expect("put a");
    s3.put(&b, PutPayload::from(big.clone()))
        .await
        .expect("put b");
    let got = s3
        .get(&a)
        .await
        .expect("get a")
        .bytes()
        .await
        .expect("read a");
    assert_eq!(&got[..], b"hello garage");
    let got = s3
        .get(&b)
        .await
        .expect("get b")
        .bytes()
        .await
        .expect("read b");
    assert!(got[..] == big[..], "b round-trips");

    // list
    let mut listed: Vec<(String, u64)> = s3
        .list(Some(&Path::from("smoke")))
        .map_ok(|m| (m.location.to_string(), m.size))
        .try_collect()
        .await
        .expect("list");
    listed.sort();
    assert_eq!(
        listed,
        vec![
            ("smoke/a.txt".to_string(), 12),
            ("smoke/sub/b.bin".to_string(), big.len() as u64)
        ]
    );

    // delete
    s3.delete(&a).await.expect("delete a");
    match s3.get(&a).await {
        Err(object_store::Error::NotFound { .. }) => {}
        other => panic!("get after delete: expected NotFound, got {other:?}"),
    }
    let left: Vec<_> = s3
        .list(Some(&Path::from("smoke")))
        .try_collect()
        .await
        .expect("list after delete");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].location, b);

    // A wrong secret is refused (garage verifies SigV4).
    let bad = store(&garage, &"f".repeat(64));
    let err = bad
        .put(&Path::from("smoke/intruder"), PutPayload::from_static(b"x"))
        .await
        .expect_err("put with a wrong secret must fail");
    eprintln!("wrong secret refused: {err}");
    assert!(
        matches!(err, object_store::Error::PermissionDenied { .. }),
        "expected PermissionDenied (403), got {err:?}"
    );
    let err = bad
        .get(&b)
        .await
        .expect_err("get with a wrong secret must fail");
    eprintln!("wrong secret refused: {err}");
    assert!(s3.head(&Path::from("smoke/intruder")).await.is_err());
}
