//! `zonesweep evaluate` and `zonesweep ridge-trace`.

use anyhow::{Context, Result, bail};
use zonesweep_shared::model::chain::{self, Detail, Parameters};
use zonesweep_shared::model::config::{Driver, Scenario};
use zonesweep_shared::model::evaluation::EvaluateDocument;
use zonesweep_shared::model::indices::IndexKey;
use zonesweep_shared::model::projection::UnitProjection;
use zonesweep_shared::model::zoning::zone_name;
use zonesweep_shared::numerics::ridge;

use crate::ModelArgs;
use crate::data::model_inputs;

#[derive(clap::Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Ridge K: a number ≥ 0, or `auto` for the ridge-trace choice
    /// (default: the configuration's, the paper's 0.02).
    #[arg(long, allow_negative_numbers = true)]
    pub k: Option<String>,
    /// Print the docs/model.md section 13 JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct RidgeTraceArgs {
    #[command(flatten)]
    pub model: ModelArgs,
}

enum KChoice {
    Value(f64),
    Auto,
}

fn parse_k(text: &str) -> Result<KChoice> {
    if text == "auto" {
        return Ok(KChoice::Auto);
    }
    match text.parse::<f64>() {
        Ok(k) if k.is_finite() && k >= 0.0 => Ok(KChoice::Value(k)),
        _ => bail!("--k must be a number ≥ 0 or `auto`, not `{text}`"),
    }
}

pub fn evaluate(args: &EvaluateArgs) -> Result<()> {
    let (dataset, config) = model_inputs(&args.model)?;
    for warning in dataset.warnings() {
        note!("warning: {warning}");
    }
    let mut parameters = Parameters::nominal(&config);
    match args.k.as_deref().map(parse_k).transpose()? {
        Some(KChoice::Value(k)) => parameters.k = k,
        Some(KChoice::Auto) => {
            let (trace, _) = chain::ridge_trace(&dataset, &config, &parameters).context("ridge trace")?;
            parameters.k = ridge::automatic_k(&trace, config.ridge.vif_limit, config.ridge.stability);
        }
        None => {}
    }
    let result = chain::run(&dataset, &config, &parameters, Detail::Full).context("the model chain failed")?;
    let document = EvaluateDocument::new(&dataset, &result);
    if args.json {
        println!("{}", serde_json::to_string(&document)?);
        return Ok(());
    }
    let fit = &result.stirpat.fit;
    println!("{} units, {}–{}", dataset.n_units(), dataset.years()[0], dataset.base_year());
    let ce = result.indices.get(IndexKey::CE);
    let cs = result.indices.get(IndexKey::CS);
    let n_years = dataset.n_years();
    let regional_total = |values: &[f64], t: usize| -> f64 {
        (0..dataset.n_units()).map(|u| values[u * n_years + t]).sum::<f64>() / 1e6
    };
    println!(
        "region: CE {:.2} Mt in {} and {:.2} Mt in {}; CS {:.2} Mt in {}",
        regional_total(ce, 0),
        dataset.years()[0],
        regional_total(ce, n_years - 1),
        dataset.base_year(),
        regional_total(cs, n_years - 1),
        dataset.base_year()
    );
    println!(
        "readings: fit = {}, cei = {}, interval_years = {}, neutral_sink = {}",
        config.stirpat.fit.key(),
        config.stirpat.cei.key(),
        config.scenarios.interval_years,
        config.scenarios.neutral_sink.key()
    );
    println!(
        "STIRPAT ridge K = {}: R² = {:.4}, t-test p = {}",
        fit.k,
        result.stirpat.r2,
        result.stirpat.t_test_p.map_or("n/a".to_owned(), |p| format!("{p:.3}"))
    );
    println!("  {:<4} {:>10} {:>12} {:>8}", "", "coef", "standardized", "VIF");
    for (d, driver) in Driver::ALL.iter().enumerate() {
        println!(
            "  {:<4} {:>10.4} {:>12.4} {:>8.3}",
            driver.key(),
            fit.coefficients[d],
            fit.standardized[d],
            fit.vif[d]
        );
    }
    let milestone = config.scenarios.milestone;
    let horizon = config.scenarios.horizon;
    let base_year = result.base_year;
    let million = |t: f64| t / 1e6;
    println!(
        "{:<9} {:>13} {:>22} {:>15} {:>16} {:>14} {:>14}",
        "scenario",
        format!("peaked ≤{milestone}"),
        format!("rising, then peak ≤{milestone}"),
        format!("no peak by {horizon}"),
        format!("not neutral {horizon}"),
        format!("CE {milestone}, Mt"),
        format!("CE {horizon}, Mt")
    );
    for scenario in Scenario::ALL {
        let projections = &result.projections[scenario as usize];
        let count = |f: &dyn Fn(&UnitProjection) -> bool| projections.iter().filter(|p| f(p)).count();
        let by_milestone = count(&|p| p.peak_year.is_some_and(|y| y <= milestone));
        let hump = count(&|p| p.peak_year.is_some_and(|y| y > base_year && y <= milestone));
        let not_peaked = count(&|p| p.peak_year.is_none());
        let not_neutral = count(&|p| !p.neutral);
        let regional = |year: i32| -> String {
            usize::try_from(i64::from(year) - i64::from(base_year)).ok().map_or("–".to_owned(), |i| {
                format!("{:.2}", million(projections.iter().map(|p| p.ce[i]).sum::<f64>()))
            })
        };
        println!(
            "{:<9} {by_milestone:>13} {hump:>22} {not_peaked:>15} {not_neutral:>16} {:>14} {:>14}",
            scenario.key(),
            regional(milestone),
            regional(horizon)
        );
    }
    println!("breaks (upper bounds of the classes): {:?}", result.breaks);
    // Every zone of the configuration: the five named ones, then "zone 6", ….
    for z in 1..=config.zoning.zones {
        let members: Vec<&str> = result
            .zone
            .iter()
            .zip(dataset.units())
            .filter(|(zone, _)| usize::from(**zone) == z)
            .map(|(_, u)| u.id.as_str())
            .collect();
        let name = zone_name(z);
        let label = if name == format!("zone {z}") { name } else { format!("zone {z} {name}") };
        println!("{label}: {} units {}", members.len(), members.join(" "));
    }
    Ok(())
}

pub fn ridge_trace(args: &RidgeTraceArgs) -> Result<()> {
    let (dataset, config) = model_inputs(&args.model)?;
    let parameters = Parameters::nominal(&config);
    let (trace, _) = chain::ridge_trace(&dataset, &config, &parameters).context("ridge trace")?;
    let auto = ridge::automatic_k(&trace, config.ridge.vif_limit, config.ridge.stability);
    print!("{:>6}", "K");
    for driver in Driver::ALL {
        print!(" {:>9}", format!("β*{}", driver.key()));
    }
    for driver in Driver::ALL {
        print!(" {:>9}", format!("VIF{}", driver.key()));
    }
    println!(" {:>8}", "R²");
    for point in &trace {
        print!("{:>6.3}", point.k);
        for v in point.standardized {
            print!(" {v:>9.4}");
        }
        for v in point.vif {
            print!(" {v:>9.3}");
        }
        println!(" {:>8.5}{}", point.r2, if point.k == auto { "  ← automatic K" } else { "" });
    }
    println!(
        "automatic K = {auto} (every VIF < {} and coefficients stable to {} of their value)",
        config.ridge.vif_limit, config.ridge.stability
    );
    Ok(())
}
