//! Realistic, deterministic department data for `lifeboat demo`: ledgers as CSV with Chinese
//! account names, loan files, scanned-document-like binary files, office documents, exports.
//! A few MiB per system; the same system always gets the same bytes.
//!
//! [`files`] is pure (a list of files and their bytes, from the system's id, department and
//! source paths); [`write`] puts them on disk. Nothing here runs a backup or knows a
//! repository. Round 2 ("a day later") changes a little, so the second backups deduplicate.

use std::path::{Path, PathBuf};

/// One file to write: absolute path and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// A small deterministic generator (SplitMix64): the data must be the same on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: &str) -> Rng {
        // FNV-1a of the seed text.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        items.get(i).copied().unwrap_or("")
    }
    /// Incompressible bytes behind a document header: what a scan looks like to a backup.
    fn scan(&mut self, header: &str, len: usize) -> Vec<u8> {
        let mut out = header.as_bytes().to_vec();
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

const ACCOUNTS: &[(&str, &str)] = &[
    ("1001", "库存现金"),
    ("1002", "银行存款"),
    ("1011", "存放同业"),
    ("1122", "应收账款"),
    ("1303", "贷款"),
    ("1304", "贷款损失准备"),
    ("2011", "吸收存款"),
    ("2211", "应付职工薪酬"),
    ("6011", "利息收入"),
    ("6021", "手续费及佣金收入"),
    ("6411", "利息支出"),
    ("6602", "业务及管理费"),
];

const BORROWERS: &[&str] = &[
    "临汾市尧都区宏达煤业有限公司",
    "运城市盐湖区果品合作社",
    "山西晋南农机销售有限公司",
    "张建国",
    "李秀英",
    "王志强",
    "刘丽娟",
    "陈晓东",
];

const GRADES: &[&str] = &["正常", "正常", "正常", "关注", "次级"];

/// A quarter's general-ledger vouchers as CSV (UTF-8 with BOM, as Excel in China writes it).
fn ledger(rng: &mut Rng, quarter: u32, rows: u32) -> Vec<u8> {
    let mut s = String::from("\u{feff}凭证号,日期,科目代码,科目名称,摘要,借方金额,贷方金额\n");
    for i in 1..=rows {
        let (code, name) = ACCOUNTS
            .get(usize::try_from(rng.below(ACCOUNTS.len() as u64)).unwrap_or(0))
            .copied()
            .unwrap_or(("1001", "库存现金"));
        let month = (quarter - 1) * 3 + 1 + u32::try_from(rng.below(3)).unwrap_or(0);
        let day = 1 + rng.below(28);
        let amount = rng.below(50_000_000);
        let (debit, credit) = if rng.below(2) == 0 {
            (amount, 0)
        } else {
            (0, amount)
        };
        s.push_str(&format!(
            "记-{quarter}-{i:05},2026-{month:02}-{day:02},{code},{name},{},{}.{:02},{}.{:02}\n",
            rng.pick(&["日常结算", "同业往来", "计提利息", "手续费收入", "费用报销"]),
            debit / 100,
            debit % 100,
            credit / 100,
            credit % 100,
        ));
    }
    s.into_bytes()
}

/// The loan book: one line per contract.
fn loan_book(rng: &mut Rng, branch: &str, rows: u32) -> Vec<u8> {
    let mut s = String::from("合同编号,借款人,贷款金额(元),年利率(%),到期日,五级分类\n");
    for i in 1..=rows {
        s.push_str(&format!(
            "{branch}-DK-2026-{i:04},{},{},{}.{:02},20{}-{:02}-28,{}\n",
            rng.pick(BORROWERS),
            (1 + rng.below(500)) * 10_000,
            3 + rng.below(3),
            rng.below(100),
            27 + rng.below(4),
            1 + rng.below(12),
            rng.pick(GRADES),
        ));
    }
    s.into_bytes()
}

fn text_doc(rng: &mut Rng, title: &str, paragraphs: u32) -> Vec<u8> {
    let mut s = format!("{title}\n\n");
    for _ in 0..paragraphs {
        s.push_str(rng.pick(&[
            "根据省行工作部署，本行持续加强业务连续性管理，定期开展灾难恢复演练。",
            "各部门应于每月末前完成档案整理，并将电子文档归档至共享目录。",
            "请各网点严格执行双人复核制度，确保账务处理准确无误。",
            "The branch reviewed its backup schedule with the DR centre; no exceptions were raised.",
        ]));
        s.push('\n');
    }
    s.into_bytes()
}

/// The branch part of a system id: `linfen-finance` → `linfen`.
fn branch_of(system: &str) -> &str {
    system.split('-').next().unwrap_or(system)
}

/// The files of `system` (its `department` and its source `paths`, already local) for
/// `round` (1: the first backup; 2: a day later, with a few changes and additions).
pub fn files(system: &str, department: &str, paths: &[PathBuf], round: u32) -> Vec<DataFile> {
    let mut rng = Rng::new(&format!("{system}/{round}"));
    let mut out = Vec::new();
    let Some(main) = paths.first() else {
        return out;
    };
    let second = paths.get(1).unwrap_or(main);
    let mut add = |dir: &Path, name: &str, bytes: Vec<u8>| {
        out.push(DataFile {
            path: dir.join(name),
            bytes,
        });
    };
    let branch = branch_of(system).to_ascii_uppercase();
    match (department, round) {
        ("finance", 1) => {
            for q in 1..=4 {
                add(
                    main,
                    &format!("总账/2026Q{q}-凭证.csv"),
                    ledger(&mut rng, q, 2500),
                );
            }
            add(
                main,
                "报表/2026年第三季度资产负债表.txt",
                text_doc(&mut rng, "资产负债表", 400),
            );
            for i in 1..=4 {
                let scan = rng.scan("%PDF-1.4\n% scanned voucher\n", 384 * 1024);
                add(main, &format!("凭证扫描/voucher-{i:04}.pdf"), scan);
            }
        }
        ("finance", _) => {
            add(main, "总账/2026Q4-凭证.csv", ledger(&mut rng, 4, 2600));
            let scan = rng.scan("%PDF-1.4\n% scanned voucher\n", 384 * 1024);
            add(main, "凭证扫描/voucher-0005.pdf", scan);
        }
        ("credit", 1) => {
            add(main, "贷款台账.csv", loan_book(&mut rng, &branch, 3000));
            for i in 1..=6 {
                let scan = rng.scan("II*\0 scanned loan contract (TIFF)\n", 320 * 1024);
                add(
                    second,
                    &format!("{branch}-DK-2026-{i:04}/合同扫描.tif"),
                    scan,
                );
            }
        }
        ("credit", _) => {
            add(main, "贷款台账.csv", loan_book(&mut rng, &branch, 3040));
            let scan = rng.scan("II*\0 scanned loan contract (TIFF)\n", 320 * 1024);
            add(second, &format!("{branch}-DK-2026-0007/合同扫描.tif"), scan);
        }
        ("operations", 1) | ("compliance", 1) => {
            for i in 1..=40 {
                add(
                    main,
                    &format!("公文/2026-{i:03}.txt"),
                    text_doc(&mut rng, "关于加强业务连续性管理的通知", 60),
                );
            }
            for i in 1..=3 {
                let blob = rng.scan("PK\x03\x04 OA export\n", 512 * 1024);
                add(second, &format!("oa-export-{i}.zip"), blob);
            }
        }
        ("operations", _) | ("compliance", _) => {
            add(
                main,
                "公文/2026-041.txt",
                text_doc(&mut rng, "灾备演练总结", 80),
            );
        }
        (_, 1) => {
            for i in 1..=8 {
                let scan = rng.scan("%PDF-1.4\n% scanned archive page\n", 384 * 1024);
                add(main, &format!("档案/{i:04}.pdf"), scan);
            }
        }
        (_, _) => {
            let scan = rng.scan("%PDF-1.4\n% scanned archive page\n", 384 * 1024);
            add(main, "档案/0009.pdf", scan);
        }
    }
    out
}

/// Writes `files`, creating directories; an existing file is replaced.
pub fn write(files: &[DataFile]) -> std::io::Result<u64> {
    let mut bytes = 0;
    for f in files {
        if let Some(dir) = f.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&f.path, &f.bytes)?;
        bytes += f.bytes.len() as u64;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_is_deterministic_realistic_and_a_few_mib() {
        let paths = [
            PathBuf::from("/d/srv/finance"),
            PathBuf::from("/d/var/backups"),
        ];
        let a = files("linfen-finance", "finance", &paths, 1);
        assert_eq!(a, files("linfen-finance", "finance", &paths, 1));
        let total: usize = a.iter().map(|f| f.bytes.len()).sum();
        assert!((1 << 20..8 << 20).contains(&total), "{total} bytes");
        let csv = String::from_utf8(a[0].bytes.clone()).unwrap();
        assert!(
            csv.contains("贷款损失准备") || csv.contains("吸收存款"),
            "{csv:.200}"
        );
        assert_ne!(a, files("yuncheng-finance", "finance", &paths, 1));
        for (system, dept) in [
            ("linfen-credit", "credit"),
            ("linfen-operations", "operations"),
            ("taiyuan-regreport", "compliance"),
            ("taiyuan-archive", "archives"),
        ] {
            for round in [1, 2] {
                assert!(
                    !files(system, dept, &paths, round).is_empty(),
                    "{system} {round}"
                );
            }
        }
    }
}
