fn main() {
    println!("skerry");
}
