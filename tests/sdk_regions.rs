//! The operator's region table is the official SDK's: `SDK_REGIONS` must equal the regions that
//! Alibaba's Python SDK (aliyun-python-sdk-core's endpoint data and aliyun-python-sdk-ecs's
//! `endpoint_map`, read by `tests/support/sdk_regions.py` in the venv of `scripts/venv.sh`)
//! names, so that the table cannot drift from its source.

mod support;

use ecs_vnc_operator::aliyun::{
    AllowedEndpoints, Endpoint, REGION_OVERRIDES, Regions, SDK_REGIONS,
};
use serde::Deserialize;
use support::processes::output_ok;
use support::venv;

const FIX: &str = "run scripts/venv.sh (it installs tests/requirements.txt, aliyun-python-sdk-core \
                   and aliyun-python-sdk-ecs included, into the venv)";

#[derive(Deserialize)]
struct Sdk {
    core: String,
    ecs: String,
    regions: Vec<String>,
    overrides: Vec<(String, String)>,
}

fn sdk() -> Sdk {
    let out = output_ok(&mut venv::script("sdk_regions.py", FIX), FIX);
    serde_json::from_slice(&out.stdout).expect("sdk_regions.py prints one JSON object")
}

#[test]
fn the_region_table_is_the_official_sdks() {
    let sdk = sdk();
    let ours: Vec<&str> = SDK_REGIONS.to_vec();
    let theirs: Vec<&str> = sdk.regions.iter().map(String::as_str).collect();
    let missing: Vec<_> = theirs.iter().filter(|r| !ours.contains(r)).collect();
    let extra: Vec<_> = ours.iter().filter(|r| !theirs.contains(r)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "src/aliyun/regions.rs SDK_REGIONS drifted from aliyun-python-sdk-core {} and \
         aliyun-python-sdk-ecs {}: add {missing:?}, remove {extra:?}",
        sdk.core,
        sdk.ecs
    );
    assert_eq!(ours, theirs, "sorted as the SDK's");
}

#[test]
fn every_region_the_sdk_overrides_is_overridden_here_and_resolves() {
    let sdk = sdk();
    let regions = Regions::default();
    for (region, host) in &sdk.overrides {
        assert!(
            REGION_OVERRIDES.iter().any(|(r, _)| r == region),
            "aliyun-python-sdk-ecs {} overrides {region} ({host}); REGION_OVERRIDES does not",
            sdk.ecs
        );
        // Whatever the table says, the default allow-list lets the region's endpoint through.
        let endpoint = Endpoint::resolve(region, None, &regions).unwrap();
        assert!(AllowedEndpoints::default().allows(&endpoint), "{endpoint}");
    }
}
