//! Which ECS regions exist: the region table of Alibaba's official SDK, plus the operator's
//! `--extra-regions` for regions newer than it. A region id becomes part of a hostname
//! (`ecs.<region>.aliyuncs.com`), and not every such name is ECS's: `oss-accelerate` makes an OSS
//! bucket's host. So only regions named here are ever turned into hosts or sent to.

use super::flag_list;
use crate::session::validate;

/// The regions of the official SDK's endpoint data: `regions` and the `ecs` regional endpoints of
/// aliyun-python-sdk-core's `aliyunsdkcore/data/endpoints.json` (2.16.1), and the regions of
/// aliyun-python-sdk-ecs's `endpoint_map` (4.24.83). Sorted, for binary search;
/// `tests/sdk_regions.rs` checks it against the SDK installed by `scripts/venv.sh`.
pub const SDK_REGIONS: &[&str] = &[
    "ap-northeast-1",
    "ap-northeast-2-pop",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-5",
    "cn-beijing",
    "cn-beijing-finance-1",
    "cn-beijing-finance-pop",
    "cn-beijing-gov-1",
    "cn-beijing-nu16-b01",
    "cn-chengdu",
    "cn-edge-1",
    "cn-fujian",
    "cn-haidian-cm12-c01",
    "cn-hangzhou",
    "cn-hangzhou-bj-b01",
    "cn-hangzhou-finance",
    "cn-hangzhou-internal-prod-1",
    "cn-hangzhou-internal-test-1",
    "cn-hangzhou-internal-test-2",
    "cn-hangzhou-internal-test-3",
    "cn-hangzhou-test-306",
    "cn-heyuan",
    "cn-hongkong",
    "cn-hongkong-finance-pop",
    "cn-huhehaote",
    "cn-huhehaote-nebula-1",
    "cn-north-2-gov-1",
    "cn-qingdao",
    "cn-qingdao-nebula",
    "cn-shanghai",
    "cn-shanghai-et15-b01",
    "cn-shanghai-et2-b01",
    "cn-shanghai-finance-1",
    "cn-shanghai-inner",
    "cn-shanghai-internal-test-1",
    "cn-shenzhen",
    "cn-shenzhen-finance-1",
    "cn-shenzhen-inner",
    "cn-shenzhen-st4-d01",
    "cn-shenzhen-su18-b01",
    "cn-wuhan",
    "cn-yushanfang",
    "cn-zhangbei",
    "cn-zhangbei-na61-b01",
    "cn-zhangjiakou",
    "cn-zhangjiakou-na62-a01",
    "cn-zhengzhou-nebula-1",
    "eu-central-1",
    "eu-west-1",
    "eu-west-1-oxs",
    "me-east-1",
    "rus-west-1-pop",
    "us-east-1",
    "us-west-1",
];

/// The regions the operator knows: [`SDK_REGIONS`] and `--extra-regions`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Regions {
    /// Sorted, deduplicated, none of them in [`SDK_REGIONS`].
    extra: Vec<String>,
}

impl Regions {
    /// The SDK's table and `extra`; each extra region must be a region id (the spec's pattern).
    pub fn new(extra: Vec<String>) -> Result<Self, String> {
        let mut extra = extra
            .into_iter()
            .map(|r| {
                validate::region_id(&r)
                    .map(|()| r)
                    .map_err(|e| format!("--extra-regions: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        extra.retain(|r| SDK_REGIONS.binary_search(&r.as_str()).is_err());
        extra.sort();
        extra.dedup();
        Ok(Self { extra })
    }

    /// `--extra-regions`: comma-separated region ids; empty means none.
    pub fn parse(list: &str) -> Result<Self, String> {
        let extra = flag_list::items(list).map(str::to_owned).collect();
        Self::new(extra)
    }

    pub fn contains(&self, region_id: &str) -> bool {
        SDK_REGIONS.binary_search(&region_id).is_ok()
            || self
                .extra
                .binary_search_by(|r| r.as_str().cmp(region_id))
                .is_ok()
    }

    /// Every known region: the SDK's, then the extra ones.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        SDK_REGIONS
            .iter()
            .copied()
            .chain(self.extra.iter().map(String::as_str))
    }

    /// The regions `--extra-regions` added to the SDK's table.
    pub fn extra(&self) -> &[String] {
        &self.extra
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_unique_so_binary_search_works() {
        assert!(SDK_REGIONS.windows(2).all(|w| w[0] < w[1]));
        for region in SDK_REGIONS {
            assert_eq!(validate::region_id(region), Ok(()), "{region}");
        }
    }

    #[test]
    fn known_regions_are_the_sdks_and_the_extra_ones() {
        let regions = Regions::parse(" cn-nanjing , ap-southeast-7,,cn-hangzhou ").unwrap();
        for known in [
            "cn-hangzhou",
            "eu-central-1",
            "cn-nanjing",
            "ap-southeast-7",
        ] {
            assert!(regions.contains(known), "{known}");
        }
        // An OSS "region" names a bucket's host: ecs.oss-accelerate.aliyuncs.com.
        for unknown in ["oss-accelerate", "oss-cn-hangzhou", "cn-hangzhou-x", "cn"] {
            assert!(!regions.contains(unknown), "{unknown}");
            assert!(!Regions::default().contains(unknown), "{unknown}");
        }
        assert!(!Regions::default().contains("cn-nanjing"));
        assert_eq!(regions.extra(), ["ap-southeast-7", "cn-nanjing"]);
        assert_eq!(regions.iter().count(), SDK_REGIONS.len() + 2);
        assert_eq!(Regions::parse("").unwrap(), Regions::default());
    }

    #[test]
    fn extra_regions_must_be_region_ids() {
        for bad in ["evil.example", "cn-hangzhou/x", "CN-X", "cn", "a-b.c"] {
            let err = Regions::parse(bad).unwrap_err();
            assert!(err.starts_with("--extra-regions: regionId"), "{bad}: {err}");
        }
    }
}
