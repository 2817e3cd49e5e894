use std::time::Instant;
use zonesweep_shared::*;
fn main() {
    let d = dataset::Dataset::from_csv(include_str!("../../data/demo/units.csv"), include_str!("../../data/demo/panel.csv"), None).unwrap();
    let c = config::Config::default();
    let spec = sweep::SweepSpec::default();
    let plan = spec.plan(&c).unwrap();
    let n = 2000;
    let t = Instant::now();
    for k in 0..n { std::hint::black_box(plan.draw(k, &c, d.rows())); }
    println!("draw {:?}", t.elapsed() / n as u32);
    let p = chain::Parameters::nominal(&c);
    let t = Instant::now();
    for _ in 0..n { std::hint::black_box(indices::compute(d.rows(), d.n_years(), &p.coefficients)); }
    println!("indices {:?}", t.elapsed() / n as u32);
    let ind = indices::compute(d.rows(), d.n_years(), &p.coefficients);
    let t = Instant::now();
    for _ in 0..n { for key in indices::IndexKey::TRENDED { for u in 0..d.n_units() { std::hint::black_box(trend::mann_kendall(ind.series(key, u))); } } }
    println!("mk {:?}", t.elapsed() / n as u32);
    let terms = chain::PanelTerms::new(&d, d.rows()).unwrap();
    let t = Instant::now();
    for _ in 0..n { std::hint::black_box(chain::run_with_rows(&d, d.rows(), &terms, &c, &p, chain::Detail::Sample).unwrap()); }
    println!("chain {:?}", t.elapsed() / n as u32);
    let res = chain::run_with_rows(&d, d.rows(), &terms, &c, &p, chain::Detail::Sample).unwrap();
    let t = Instant::now();
    for _ in 0..n { std::hint::black_box(aggregate::Outcome::new(&res, &c, &p)); }
    println!("outcome {:?}", t.elapsed() / n as u32);
    let o = aggregate::Outcome::new(&res, &c, &p);
    let mut a = aggregate::Aggregate::empty(aggregate::Shape::new(81, 2020, &c));
    let t = Instant::now();
    for _ in 0..n { a.add(&o); }
    println!("aggregate add {:?}", t.elapsed() / n as u32);
    let totals: Vec<u32> = res.total.clone();
    let t = Instant::now();
    for _ in 0..n { std::hint::black_box(zoning::zones(&totals, &c.zoning)); }
    println!("jenks {:?}", t.elapsed() / n as u32);
}
